package migration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/datastore"
)

// The tests describe datastores as text, one entry a line:
//
//	live KEY VALUE
//	tx NAME KEY VALUE
//	meta KEY METAKEY VALUE
//
// VALUE is canonical JSON (the rest of the line).

// baseData is the datastore most tests start from: live values, metadata
// and two pending transactions, with a dotted key and OS-owned keys.
const baseData = `
live settings.motd "hello"
live settings.network.hostname "host-1"
live settings.network.https-proxy "proxy:3128"
live settings.updates.metadata-base-url "https://old.example/meta"
live settings.updates.seed 42
live settings.ntp.time-servers ["a.pool","b.pool"]
live settings.kernel.sysctl."net.ipv4.ip_forward" "1"
live services.motd.restart-commands ["r"]
live configuration-files.motd.template-path "/usr/share/templates/motd"
tx petrel-launch settings.motd "pending motd"
tx petrel-launch settings.network.hostname "host-2"
tx other settings.updates.metadata-base-url "https://new.example/meta"
meta settings.motd affected-services ["motd"]
meta settings.network affected-services ["network"]
meta settings.updates.seed setting-generator "/usr/bin/sundog generate-seed"
meta configuration-files.motd template "{{settings.motd}}"
`

func parseData(t testing.TB, text string) *Data {
	t.Helper()
	d := NewData()
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.SplitN(line, " ", 2)
		var parts []string
		switch f[0] {
		case "live":
			parts = append([]string{""}, strings.SplitN(f[1], " ", 2)...)
		case "tx", "meta":
			parts = strings.SplitN(f[1], " ", 3)
		}
		if len(parts) != 3 {
			t.Fatalf("bad data line %q", line)
		}
		if f[0] == "meta" {
			d.setMeta(datastore.MetadataEntry{Data: datastore.MustKey(datastore.DataKey, parts[0]),
				Meta: datastore.MustKey(datastore.MetaKey, parts[1]), Value: canon(t, parts[2])})
			continue
		}
		k := datastore.MustKey(datastore.DataKey, parts[1])
		d.tree(parts[0])[k.Name()] = datastore.KeyValue{Key: k, Value: canon(t, parts[2])}
	}
	return d
}

func canon(t testing.TB, s string) []byte {
	t.Helper()
	v, err := datastore.CanonicalValue([]byte(s))
	if err != nil {
		t.Fatalf("value %s: %v", s, err)
	}
	return v
}

// dataLines returns d in the text form, one sorted line per entry.
func dataLines(d *Data) []string {
	var out []string
	for _, t := range d.trees() {
		for name, kv := range t.values {
			if t.tx == "" {
				out = append(out, fmt.Sprintf("live %s %s", name, kv.Value))
			} else {
				out = append(out, fmt.Sprintf("tx %s %s %s", t.tx, name, kv.Value))
			}
		}
	}
	for data, metas := range d.Metadata {
		for meta, e := range metas {
			out = append(out, fmt.Sprintf("meta %s %s %s", data, meta, e.Value))
		}
	}
	sort.Strings(out)
	return out
}

// changes lists what differs between a and b: "-line" for an entry only
// in a, "+line" for one only in b, sorted by line.
func changes(a, b *Data) string {
	in := func(lines []string) map[string]bool {
		m := map[string]bool{}
		for _, l := range lines {
			m[l] = true
		}
		return m
	}
	la, lb := dataLines(a), dataLines(b)
	ma, mb := in(la), in(lb)
	var out []string
	for _, l := range la {
		if !mb[l] {
			out = append(out, "-"+l)
		}
	}
	for _, l := range lb {
		if !ma[l] {
			out = append(out, "+"+l)
		}
	}
	return sortLines(strings.Join(out, "\n"))
}

// sortLines sorts the lines of s.
func sortLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// mustParse parses a migration from TOML text.
func mustParse(t testing.TB, name, text string) *Migration {
	t.Helper()
	m, err := Parse(name, []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := m.Check(testFunctions()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	return m
}

// testFunctions registers a function for the tests: "shout-motd" makes
// the live motd upper case and keeps the value it had, so that its
// backward restores it exactly; without a kept value the backward leaves
// the motd as it is.
func testFunctions() Functions {
	motd := datastore.MustKey(datastore.DataKey, "settings.motd")
	return Functions{
		"shout-motd": {
			Forward: func(d *Data, s *Saved) error {
				kv, ok := d.Live[motd.Name()]
				if !ok {
					return nil
				}
				var v string
				if err := json.Unmarshal(kv.Value, &v); err != nil {
					return fmt.Errorf("settings.motd is not a string: %w", err)
				}
				nv, err := datastore.EncodeValue(strings.ToUpper(v))
				if err != nil {
					return err
				}
				s.Function, _ = json.Marshal(string(kv.Value))
				d.Live[motd.Name()] = datastore.KeyValue{Key: motd, Value: nv}
				return nil
			},
			Backward: func(d *Data, s *Saved) error {
				if len(s.Function) == 0 {
					return nil
				}
				var orig string
				if err := json.Unmarshal(s.Function, &orig); err != nil {
					return err
				}
				d.Live[motd.Name()] = datastore.KeyValue{Key: motd, Value: []byte(orig)}
				return nil
			},
		},
	}
}

// newDatastore creates a datastore of version under base holding d,
// written through the Store API (commits, pending writes, metadata) and
// closed.
func newDatastore(t testing.TB, base, version string, d *Data) {
	t.Helper()
	ctx := context.Background()
	cur, err := datastore.Create(base, version)
	if err != nil {
		t.Fatal(err)
	}
	s, err := datastore.Open(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	c := d.Contents()
	if len(c.Live) > 0 {
		if err := s.SetMany(ctx, c.Live, datastore.Live()); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range c.Metadata {
		if err := s.SetMetadata(ctx, m.Meta, m.Data, m.Value); err != nil {
			t.Fatal(err)
		}
	}
	for tx, kvs := range c.Pending {
		if err := s.SetMany(ctx, kvs, datastore.Pending(tx)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// readDatastore opens the datastore current names and reads all of it.
func readDatastore(t testing.TB, base string) *Data {
	t.Helper()
	ctx := context.Background()
	s, err := datastore.Open(ctx, filepath.Join(base, datastore.CurrentLink))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := ReadData(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// treeFiles returns every file under the live/ and pending/ trees of
// dir with its content: the datastore as the disk holds it.
func treeFiles(t testing.TB, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, sub := range []string{"live", "pending"} {
		root := filepath.Join(dir, sub)
		err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			files[rel] = string(data)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}
