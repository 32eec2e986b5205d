package datastore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadChain(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	if _, err := ReadChain(base); !errors.Is(err, ErrNoDatastore) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadChain(empty) = %v, want ErrNoDatastore", err)
	}
	if _, err := Create(base, "1.26.1"); err != nil {
		t.Fatal(err)
	}
	c, err := ReadChain(base)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != "1.26.1" || c.Major != "v1" || c.Minor != "v1.26" || c.Patch != "v1.26.1" || !strings.HasPrefix(c.Dir, "v1.26.1_") {
		t.Fatalf("ReadChain = %+v", c)
	}
	for _, tc := range []struct {
		name, link, target, want string
	}{
		{"absolute target", "v1.26", "/tmp/v1.26.1", "not a name in the base directory"},
		{"minor of another version", "v1.26", "v1.27.0", "does not name one version"},
		{"patch not a version", "v1.26", "v1.x.1", "is not vX.Y.Z"},
		{"dangling", "v1.26.1", "v1.26.1_gone", "is not a directory"},
		{"not a versioned directory", "v1.26.1", "data", "not a vX.Y.Z_<random> directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := t.TempDir()
			if _, err := Create(b, "1.26.1"); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(b, tc.link)); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tc.target, filepath.Join(b, tc.link)); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(tc.target, "v1.") && tc.link == "v1.26" {
				// The replaced minor link names a patch link that exists.
				dir, _ := os.Readlink(filepath.Join(b, "v1.26.1"))
				if err := os.Symlink(dir, filepath.Join(b, tc.target)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := ReadChain(b); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadChain = %v, want ErrCorrupt containing %q", err, tc.want)
			}
		})
	}
}

func TestNewDirAndLink(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	if _, err := Create(base, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	name, err := NewDir(base, "1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := ReadChain(base); c.Version != "1.0.0" {
		t.Fatalf("NewDir moved a link: %+v", c)
	}
	links, err := LinkSteps("1.1.0", name)
	if err != nil {
		t.Fatal(err)
	}
	if want := []ChainLink{{"v1.1.0", name}, {"v1.1", "v1.1.0"}, {"v1", "v1.1"}, {CurrentLink, "v1"}}; !reflect.DeepEqual(links, want) {
		t.Fatalf("LinkSteps = %v, want %v", links, want)
	}
	for _, l := range links {
		if err := Link(base, l.Name, l.Target); err != nil {
			t.Fatal(err)
		}
	}
	c, err := ReadChain(base)
	if err != nil || c.Version != "1.1.0" || c.Dir != name {
		t.Fatalf("ReadChain after Link = %+v, %v", c, err)
	}
	if err := Link(base, "v1", "../v1.1"); err == nil {
		t.Fatal("Link to a path succeeded")
	}
	if _, err := NewDir(base, "1.1"); err == nil {
		t.Fatal("NewDir(1.1) succeeded")
	}
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if IsTemp(e.Name()) {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

// TestWriteContents writes a datastore without a Store and reads it back
// through Open: every value, metadata entry and transaction is there.
func TestWriteContents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := t.TempDir()
	name, err := NewDir(base, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	kv := func(k, v string) KeyValue { return KeyValue{Key: MustKey(DataKey, k), Value: []byte(v)} }
	want := Contents{
		Live: []KeyValue{kv("settings.motd", `"hi"`), kv(`settings.kernel.sysctl."net.ipv4.ip_forward"`, `"1"`),
			kv("services.motd.restart-commands", `["a","b"]`)},
		Metadata: []MetadataEntry{
			{Data: MustKey(DataKey, "settings.motd"), Meta: MustKey(MetaKey, "affected-services"), Value: []byte(`["motd"]`)},
			{Data: MustKey(DataKey, "settings.updates.seed"), Meta: MustKey(MetaKey, "setting-generator"), Value: []byte(`"gen"`)},
		},
		Pending: map[string][]KeyValue{"a tx:1": {kv("settings.motd", `"pending"`), kv("settings.ntp.time-servers", `["x"]`)}},
	}
	dir := filepath.Join(base, name)
	if err := WriteContents(dir, want); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := Contents{Pending: map[string][]KeyValue{}}
	got.Live, _ = s.Values(ctx, "", Live())
	got.Metadata, _ = s.ListMetadata(ctx, "", "")
	txs, _ := s.ListTransactions(ctx)
	for _, tx := range txs {
		got.Pending[tx], _ = s.Values(ctx, "", Pending(tx))
	}
	sortKVs := func(kvs []KeyValue) map[string]string {
		m := map[string]string{}
		for _, kv := range kvs {
			m[kv.Key.Name()] = string(kv.Value)
		}
		return m
	}
	if !reflect.DeepEqual(sortKVs(got.Live), sortKVs(want.Live)) || !reflect.DeepEqual(got.Metadata, want.Metadata) ||
		len(got.Pending) != 1 || !reflect.DeepEqual(sortKVs(got.Pending["a tx:1"]), sortKVs(want.Pending["a tx:1"])) {
		t.Fatalf("read back %+v, want %+v", got, want)
	}
}

func TestWriteContentsRefuses(t *testing.T) {
	t.Parallel()
	kv := func(k, v string) KeyValue { return KeyValue{Key: MustKey(DataKey, k), Value: []byte(v)} }
	meta := func(k string) MetadataEntry {
		return MetadataEntry{Data: MustKey(DataKey, k), Meta: MustKey(MetaKey, "m"), Value: []byte(`"x"`)}
	}
	for _, tc := range []struct {
		name string
		c    Contents
		want error
		msg  string
	}{
		{"value and parent", Contents{Live: []KeyValue{kv("settings.a", `1`), kv("settings.a.b", `2`)}}, ErrConflict,
			"settings.a is a value and a parent of settings.a.b"},
		{"pending value and parent", Contents{Pending: map[string][]KeyValue{"t": {kv("settings.a.b.c", `1`), kv("settings.a", `2`)}}},
			ErrConflict, `transaction "t": conflicts`},
		{"metadata below a value", Contents{Live: []KeyValue{kv("settings.a", `1`)}, Metadata: []MetadataEntry{meta("settings.a.b")}},
			ErrConflict, "settings.a is a live value"},
		{"not canonical", Contents{Live: []KeyValue{kv("settings.a", `[ 1 ]`)}}, ErrInvalidValue, "not canonical"},
		{"null", Contents{Live: []KeyValue{kv("settings.a", `null`)}}, ErrInvalidValue, "not canonical"},
		{"zero key", Contents{Live: []KeyValue{{Value: []byte(`1`)}}}, ErrInvalidKey, "not a data key"},
		{"bad transaction", Contents{Pending: map[string][]KeyValue{"a/b": {kv("settings.a", `1`)}}}, ErrInvalidTransaction, ""},
		{"twice", Contents{Live: []KeyValue{kv("settings.a", `1`), kv("settings.a", `1`)}}, nil, "given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			name, err := NewDir(base, "1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			err = WriteContents(filepath.Join(base, name), tc.c)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), strings.TrimSuffix(tc.msg, ": conflicts")) {
				t.Fatalf("WriteContents = %v, want %v containing %q", err, tc.want, tc.msg)
			}
			if entries, _ := os.ReadDir(filepath.Join(base, name, "live")); len(entries) != 0 {
				t.Errorf("refused contents left %d entries in live/", len(entries))
			}
		})
	}
}
