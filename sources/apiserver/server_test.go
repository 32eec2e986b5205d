package apiserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/settings"
)

type recordApplier struct {
	mu    sync.Mutex
	calls [][]string
}

func (a *recordApplier) Apply(_ context.Context, keys []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, keys)
	return nil
}

func (a *recordApplier) last() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.calls) == 0 {
		return "none"
	}
	return fmt.Sprint(a.calls[len(a.calls)-1])
}

type recordRebooter struct{ n int }

func (r *recordRebooter) Reboot(context.Context) error { r.n++; return nil }

type harness struct {
	store    *datastore.Store
	client   *apiclient.Client
	applier  *recordApplier
	rebooter *recordRebooter
	socket   string
	// stop ends Serve and returns what it returned; the test's cleanup
	// calls it too.
	stop func() error
}

func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func startServer(t testing.TB, v Validator, mode os.FileMode) *harness {
	t.Helper()
	return startServerWith(t, mode, func(c *Config) { c.Validator = v })
}

// startServerWith starts a server on a new datastore with a Config of
// recording fakes and a 4096-byte body limit, changed by edit.
func startServerWith(t testing.TB, mode os.FileMode, edit func(*Config)) *harness {
	t.Helper()
	dir, err := os.MkdirTemp("", "api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cur, err := datastore.Create(filepath.Join(dir, "ds"), "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	store, err := datastore.Open(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{store: store, applier: &recordApplier{}, rebooter: &recordRebooter{}, socket: filepath.Join(dir, "api.sock")}
	cfg := Config{
		Store: store, Applier: h.applier, Rebooter: h.rebooter, SocketGID: -1,
		OS:           api.OSRelease{PrettyName: "Petrel 1.0", VariantID: "metal-dev", VersionID: "1.0.0", BuildID: "abc", Arch: "x86_64"},
		MaxBodyBytes: 4096,
	}
	edit(&cfg)
	srv := New(cfg)
	ln, err := Listen(h.socket, -1, mode)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	h.client = apiclient.New(h.socket)
	var once sync.Once
	var serveErr error
	h.stop = func() error {
		once.Do(func() {
			cancel()
			serveErr = <-done
		})
		return serveErr
	}
	t.Cleanup(func() {
		h.client.Close()
		if err := h.stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
		store.Close()
	})
	return h
}

func (h *harness) seed(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	set := func(k, v string) {
		if err := h.store.Set(ctx, datastore.MustKey(datastore.DataKey, k), []byte(v), datastore.Live()); err != nil {
			t.Fatal(err)
		}
	}
	meta := func(m, k, v string) {
		if err := h.store.SetMetadata(ctx, datastore.MustKey(datastore.MetaKey, m), datastore.MustKey(datastore.DataKey, k), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	set("settings.motd", `"hi"`)
	set("settings.network.hostname", `"h"`)
	set("services.motd.configuration-files", `["motd"]`)
	set("services.motd.restart-commands", `[]`)
	set("configuration-files.motd.path", `"/etc/motd"`)
	set("configuration-files.motd.template-path", `"/usr/share/templates/motd"`)
	meta("affected-services", "settings.network", `["network"]`)
	meta("setting-generator", "settings.host", `"gen --x"`)
	meta("template", "settings.motd", `"{{settings.motd}}"`)
}

type step struct {
	method, uri, body string
	code              int
	want              string // exact body, or "~substring"
}

func (h *harness) run(t *testing.T, steps []step) {
	t.Helper()
	for i, s := range steps {
		var body []byte
		if s.body != "" {
			body = []byte(s.body)
		}
		code, got, err := h.client.Raw(context.Background(), s.method, s.uri, body)
		if err != nil {
			t.Fatalf("step %d %s %s: %v", i, s.method, s.uri, err)
		}
		ok := code == s.code
		if w, sub := strings.CutPrefix(s.want, "~"); sub {
			ok = ok && strings.Contains(string(got), w)
		} else if s.want != "" || code == 204 {
			ok = ok && string(got) == s.want
		}
		if !ok {
			t.Errorf("step %d %s %s = %d %q, want %d %q", i, s.method, s.uri, code, got, s.code, s.want)
		}
	}
}

func TestRoutes(t *testing.T) {
	h := startServer(t, nil, 0o660)
	h.seed(t)
	h.run(t, []step{
		{"GET", "/settings", "", 200, `{"motd":"hi","network":{"hostname":"h"}}`},
		{"GET", "/settings?keys=settings.motd,settings.nope", "", 200, `{"motd":"hi"}`},
		{"GET", "/settings?keys=", "", 400, "Input 'keys' cannot be empty"},
		{"GET", "/settings?keys=bad%20key", "", 400, `~invalid character in key: ' '`},
		{"GET", "/settings?prefix=network", "", 200, `{"network":{"hostname":"h"}}`},
		{"GET", "/settings?prefix=settings.mo", "", 200, `{"motd":"hi"}`},
		{"GET", "/settings?prefix=", "", 400, "Input 'prefix' cannot be empty"},
		{"PATCH", "/settings?tx=t1", `{"motd":"new","ntp":{"time-servers":["a","b"]},"gone":null}`, 204, ""},
		{"GET", "/tx?tx=t1", "", 200, `{"motd":"new","ntp":{"time-servers":["a","b"]}}`},
		{"GET", "/tx/list", "", 200, `["t1"]`},
		{"GET", "/settings?keys=settings.motd", "", 200, `{"motd":"hi"}`},
		{"POST", "/tx/commit?tx=t1", "", 200, `["settings.motd","settings.ntp.time-servers"]`},
		{"POST", "/tx/commit?tx=t1", "", 422, "Tried to commit with no pending changes"},
		{"GET", "/settings?prefix=settings.motd", "", 200, `{"motd":"new"}`},
		{"PATCH", "/settings", `{"motd":"d"}`, 204, ""},
		{"GET", "/tx", "", 200, `{"motd":"d"}`},
		{"GET", "/tx/list", "", 200, `["default"]`},
		{"DELETE", "/tx", "", 200, `["settings.motd"]`},
		{"DELETE", "/tx?tx=never", "", 200, `[]`},
		{"PATCH", "/settings/keypair?tx=kp", `{"request_payload":["motd=kp","settings.x.n=5","b=true","f=1.5",` + `"kubernetes.node-labels.\"my.label\"=v"]}`, 204, ""},
		{"GET", "/tx?tx=kp", "", 200, `{"b":true,"f":1.5,"kubernetes":{"node-labels":{"my.label":"v"}},"motd":"kp","x":{"n":5}}`},
		{"PATCH", "/settings/keypair?tx=kp", `{"request_payload":["noequals"]}`, 400, `~expected key=value`},
		{"PATCH", "/settings/keypair?tx=kp", `{"payload":[]}`, 400, `~unknown field`},
		{"DELETE", "/tx?tx=kp", "", 200, `["settings.b","settings.f","settings.kubernetes.node-labels.\"my.label\"","settings.motd","settings.x.n"]`},
		{"POST", "/tx/apply?keys=settings.motd", "", 204, ""},
		{"POST", "/tx/apply?keys=a..b", "", 400, "~empty key segment"},
		{"PATCH", "/settings?tx=ca", `{"motd":"ca","network":{"hostname":"n"}}`, 204, ""},
		{"POST", "/tx/commit_and_apply?tx=ca", "", 200, `["settings.motd","settings.network.hostname"]`},
		{"POST", "/tx/commit_and_apply?tx=ca", "", 422, "Tried to commit with no pending changes"},
		{"GET", "/metadata/affected-services?keys=settings.network.hostname,settings.motd", "", 200, `{"settings.network.hostname":["network"]}`},
		{"GET", "/metadata/affected-services", "", 400, "Missing input parameter 'keys'"},
		{"GET", "/metadata/setting-generators", "", 200, `{"settings.host":"gen --x"}`},
		{"GET", "/metadata/templates?keys=settings.motd", "", 200, `{"settings.motd":"{{settings.motd}}"}`},
		{"GET", "/services", "", 200, `{"motd":{"configuration-files":["motd"],"restart-commands":[]}}`},
		{"GET", "/services?names=motd", "", 200, `{"motd":{"configuration-files":["motd"],"restart-commands":[]}}`},
		{"GET", "/services?names=motd,nope", "", 404, "Found no 'services.nope' in datastore"},
		{"GET", "/services?prefix=mo", "", 200, `{"motd":{"configuration-files":["motd"],"restart-commands":[]}}`},
		{"GET", "/configuration-files?names=motd", "", 200, `{"motd":{"path":"/etc/motd","template-path":"/usr/share/templates/motd"}}`},
		{"GET", "/os", "", 200, `{"pretty_name":"Petrel 1.0","variant_id":"metal-dev","version_id":"1.0.0","build_id":"abc","arch":"x86_64"}`},
		{"GET", "/os?prefix=variant", "", 200, `{"variant_id":"metal-dev"}`},
		{"GET", "/?prefix=os.arch", "", 200, `{"os":{"arch":"x86_64"}}`},
		{"GET", "/?prefix=settings.motd", "", 200, `{"settings":{"motd":"ca"}}`},
		{"GET", "/", "", 200, `~"configuration-files":{"motd"`},
		{"POST", "/actions/reboot", "", 204, ""},
		{"GET", "/nope", "", 404, "~not found"},
		{"DELETE", "/settings", "", 405, "~Method Not Allowed"},
	})
	if got := h.applier.last(); got != "[settings.motd settings.network.hostname]" {
		t.Errorf("applier last call = %s", got)
	}
	if h.rebooter.n != 1 {
		t.Errorf("rebooter called %d times, want 1", h.rebooter.n)
	}
}

func TestBadInput(t *testing.T) {
	h := startServer(t, settings.Validator{}, 0o660)
	big := `{"motd":"` + strings.Repeat("x", 5000) + `"}`
	h.run(t, []step{
		{"PATCH", "/settings", `{"motd":`, 400, "invalid JSON: unexpected EOF"},
		{"PATCH", "/settings", `[1]`, 400, "invalid JSON: expected a JSON object, got a list"},
		{"PATCH", "/settings", `{"motd":"a"} x`, 400, "~trailing data"},
		{"PATCH", "/settings", `{"unknown":1}`, 400, "~settings.unknown: unknown setting"},
		{"PATCH", "/settings", `{"network":{"hostname":"h","bogus":1}}`, 400, "~settings.network.bogus: unknown setting"},
		{"PATCH", "/settings", `{"motd":5}`, 400, "~settings.motd: expected a string"},
		{"PATCH", "/settings", big, 413, "~larger than 4096 bytes"},
		{"PATCH", "/settings?tx=..%2Fx", `{"motd":"a"}`, 400, `~invalid transaction name "../x": must not contain '/'`},
		{"PATCH", "/settings?tx=%2F", `{"motd":"a"}`, 400, "~must not contain '/'"},
		{"PATCH", "/settings?tx=", `{"motd":"a"}`, 400, "Input 'tx' cannot be empty"},
		{"POST", "/tx/commit?tx=..", "", 400, "~invalid transaction name"},
		{"DELETE", "/tx?tx=..%2F..", "", 400, "~invalid transaction name"},
		{"GET", "/tx/list", "", 200, `[]`},
	})
	// A permissive server still rejects keys it cannot store.
	p := startServer(t, nil, 0o660)
	p.run(t, []step{
		{"PATCH", "/settings", `{"bad key":1}`, 400, `~invalid character in key: ' '`},
		{"PATCH", "/settings", `{"a":{"b":{}},"c":{"x=y":1},"d":{"e":1}}`, 400, `~invalid character in key: '='`},
		{"PATCH", "/settings", `{"nested":[{"a":null}]}`, 204, ""},
		{"PATCH", "/settings", `{"a":1}`, 204, ""},
		{"PATCH", "/settings", `{"a":{"b":1}}`, 400, "~conflicts with an existing key"},
		{"GET", "/tx", "", 200, `{"a":1,"nested":[{"a":null}]}`},
	})
}

func TestConcurrentClients(t *testing.T) {
	h := startServer(t, nil, 0o660)
	ctx := context.Background()
	const workers, rounds = 4, 15
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				tx := fmt.Sprintf("w%d", w)
				patch := map[string]any{fmt.Sprintf("w%d", w): map[string]any{"a": r, "b": map[string]any{"c": r}}}
				if err := h.client.Set(ctx, tx, patch); err != nil {
					t.Error(err)
					return
				}
				if _, err := h.client.Commit(ctx, tx); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for range rounds * 2 {
				got, err := h.client.Get(ctx, fmt.Sprintf("w%d", w))
				if err != nil {
					t.Error(err)
					return
				}
				if m, ok := got[fmt.Sprintf("w%d", w)].(map[string]any); ok {
					if c := m["b"].(map[string]any)["c"]; c != m["a"] {
						t.Errorf("torn read: a=%v b.c=%v", m["a"], c)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	all, err := h.client.Get(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for w := range workers {
		m := all[fmt.Sprintf("w%d", w)].(map[string]any)
		if m["a"] != float64(rounds-1) || m["b"].(map[string]any)["c"] != float64(rounds-1) {
			t.Errorf("final w%d = %v, want %d", w, m, rounds-1)
		}
	}
}

// TestSettingsCache: GET /settings is served from a cached body, which
// every kind of live change replaces before the change is acknowledged.
func TestSettingsCache(t *testing.T) {
	h := startServer(t, nil, 0o660)
	ctx := context.Background()
	motd := datastore.MustKey(datastore.DataKey, "settings.motd")
	steps := []struct {
		name   string
		change func() error
		want   string
	}{
		{"empty", func() error { return nil }, `{}`},
		{"live set", func() error { return h.store.Set(ctx, motd, []byte(`"a"`), datastore.Live()) }, `{"motd":"a"}`},
		{"pending only", func() error { return h.store.Set(ctx, motd, []byte(`"b"`), datastore.Pending("t")) }, `{"motd":"a"}`},
		{"commit", func() error { _, err := h.store.Commit(ctx, "t"); return err }, `{"motd":"b"}`},
		{"PATCH and commit over HTTP", func() error {
			if err := h.client.Set(ctx, "u", map[string]any{"motd": "c<&>"}); err != nil {
				return err
			}
			_, err := h.client.Commit(ctx, "u")
			return err
		}, `{"motd":"c<&>"}`},
		{"live delete", func() error { return h.store.Delete(ctx, motd, datastore.Live()) }, `{}`},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.change(); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second GET is answered from the cache
				code, body, err := h.client.Raw(ctx, "GET", "/settings", nil)
				if err != nil || code != 200 || string(body) != st.want {
					t.Fatalf("GET /settings = %d %s, %v, want 200 %s", code, body, err, st.want)
				}
			}
		})
	}
}
