package settings

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/datastore"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadDefaultsLayering(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"10-base.toml": `
[settings]
motd = "base"
[settings.ntp]
time-servers = ["a.example", "b.example"]
[settings.network]
no-proxy = ["x"]
`,
		"20-more.toml": `
[settings]
motd = "more"
[settings.ntp]
time-servers = ["c.example"]
[settings.updates]
seed = 5
`,
		"notes.txt": "ignored",
	})
	d, err := LoadDefaults(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"motd":    "more",
		"ntp":     map[string]any{"time-servers": []any{"c.example"}},
		"network": map[string]any{"no-proxy": []any{"x"}},
		"updates": map[string]any{"seed": int64(5)},
	}
	if !reflect.DeepEqual(d.Settings, want) {
		t.Fatalf("settings = %#v\nwant %#v", d.Settings, want)
	}
	if len(d.Files) != 2 {
		t.Fatalf("files = %v", d.Files)
	}
}

func TestLoadDefaultsErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"type mismatch names both files", map[string]string{
			"10-a.toml": "[settings.network]\nhostname = \"x\"\n",
			"20-b.toml": "[settings]\nnetwork = \"flat\"\n",
		}, []string{"20-b.toml: settings.network is a string, but", "10-a.toml made it a table"}},
		{"malformed TOML line", map[string]string{"10-a.toml": "[settings]\nmotd = \n"}, []string{"10-a.toml: line 2"}},
		{"unknown section", map[string]string{"10-a.toml": "[setings]\nmotd = \"x\"\n"}, []string{"unknown section [setings]"}},
		{"invalid setting", map[string]string{"10-a.toml": "[settings.network]\nhostname = 7\n"}, []string{"settings.network.hostname: expected a string, got number"}},
		{"undefined file", map[string]string{"10-a.toml": "[services.x]\nconfiguration-files = [\"nope\"]\n"}, []string{`services.x.configuration-files: "nope" is not defined`}},
		{"unknown service field", map[string]string{"10-a.toml": "[services.x]\nrestart = [\"a\"]\n"}, []string{`services.x: unknown field "restart"`}},
		{"no files", map[string]string{}, []string{"no *.toml files"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadDefaults(context.Background(), writeFiles(t, tc.files))
			if err == nil {
				t.Fatal("LoadDefaults succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// The shipped dev-variant defaults must load and name real templates.
func TestShippedDefaults(t *testing.T) {
	d, err := LoadDefaults(context.Background(), "defaults")
	if err != nil {
		t.Fatal(err)
	}
	if d.Settings["motd"] != "Welcome to Petrel!" {
		t.Errorf("motd = %v", d.Settings["motd"])
	}
	for _, svc := range []string{"motd", "hostname"} {
		s, ok := d.Services[svc]
		if !ok {
			t.Fatalf("service %s missing", svc)
		}
		for _, f := range s.ConfigurationFiles {
			tp := filepath.Join("..", "render", "templates", filepath.Base(d.ConfigurationFiles[f].TemplatePath))
			if _, err := os.Stat(tp); err != nil {
				t.Errorf("template of %s: %v", f, err)
			}
		}
	}
}

func TestStorewolf(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	d, err := LoadDefaults(ctx, "defaults")
	if err != nil {
		t.Fatal(err)
	}
	cfg := StorewolfConfig{Base: base, Version: "1.2.3"}
	res, err := Storewolf(ctx, cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.Settings == 0 || res.Metadata == 0 || res.Other == 0 {
		t.Fatalf("first run result %+v", res)
	}
	store, err := datastore.Open(ctx, filepath.Join(base, "current"))
	if err != nil {
		t.Fatal(err)
	}
	motd := datastore.MustKey(datastore.DataKey, "settings.motd")
	if v, err := store.Get(ctx, motd, datastore.Pending(api.LaunchTransaction)); err != nil || string(v) != `"Welcome to Petrel!"` {
		t.Fatalf("pending motd = %s, %v", v, err)
	}
	if v, err := store.GetMetadata(ctx, datastore.MustKey(datastore.MetaKey, "affected-services"), datastore.MustKey(datastore.DataKey, "settings.network.hostname")); err != nil || string(v) != `["hostname"]` {
		t.Fatalf("inherited affected-services = %s, %v", v, err)
	}
	if v, err := store.Get(ctx, datastore.MustKey(datastore.DataKey, "configuration-files.motd.path"), datastore.Live()); err != nil || string(v) != `"/etc/motd"` {
		t.Fatalf("live configuration file path = %s, %v", v, err)
	}
	// A user value is committed; the next boot must not overwrite it.
	if err := store.Set(ctx, motd, []byte(`"mine"`), datastore.Live()); err != nil {
		t.Fatal(err)
	}
	store.Close()
	res, err = Storewolf(ctx, cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || res.Metadata != 0 || res.Other != 0 {
		t.Fatalf("second run result %+v", res)
	}
	store, err = datastore.Open(ctx, filepath.Join(base, "current"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Get(ctx, motd, datastore.Pending(api.LaunchTransaction)); err == nil {
		t.Fatal("default motd staged over a live value")
	}
	if v, _ := store.Get(ctx, motd, datastore.Live()); string(v) != `"mine"` {
		t.Fatalf("live motd = %s", v)
	}
	store.Close()

	// The OS moved to another version and the migrator did not move the
	// datastore: storewolf refuses it and changes nothing.
	reopen, err := datastore.Open(ctx, filepath.Join(base, "current"))
	if err != nil {
		t.Fatal(err)
	}
	if err := reopen.Set(ctx, motd, []byte(`"pending"`), datastore.Pending("user")); err != nil {
		t.Fatal(err)
	}
	reopen.Close()
	res, err = Storewolf(ctx, StorewolfConfig{Base: base, Version: "1.3.0"}, d)
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "is version 1.2.3, the OS is 1.3.0") || res.Created {
		t.Fatalf("Storewolf on a 1.2.3 datastore for 1.3.0 = %+v, %v; want ErrVersion", res, err)
	}
	reopen, err = datastore.Open(ctx, filepath.Join(base, "current"))
	if err != nil {
		t.Fatal(err)
	}
	defer reopen.Close()
	if txs, err := reopen.ListTransactions(ctx); err != nil || !slices.Equal(txs, []string{api.LaunchTransaction, "user"}) {
		t.Errorf("transactions after the refusal = %v, %v; want both pending ones kept", txs, err)
	}
}

func FuzzDefaultsTOML(f *testing.F) {
	f.Add("[settings]\nmotd = \"x\"\n[services.a]\nconfiguration-files = []\n")
	f.Add("[metadata.settings.a]\nb.c = \"d\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		doc, err := decodeTOML("f.toml", []byte(s))
		if err != nil {
			return
		}
		merged := map[string]any{}
		_ = mergeTOML(merged, doc, nil, "f.toml", map[string]string{})
		if d, err := defaultsFrom(merged); err == nil {
			if _, err := Flatten([]string{"settings"}, d.Settings); err != nil {
				t.Fatalf("valid settings failed to flatten: %v", err)
			}
		}
	})
}
