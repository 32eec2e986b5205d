package render

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/settings"
)

// fakeSource serves a model from memory, resolving affected-services by
// prefix inheritance like the datastore.
type fakeSource struct {
	affected map[string][]string // data key -> services
	services map[string]settings.Service
	files    map[string]settings.ConfigurationFile
	model    map[string]any
}

func (f *fakeSource) AffectedServices(_ context.Context, keys []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, k := range keys {
		best := ""
		for p := range f.affected {
			if (k == p || strings.HasPrefix(k, p+".")) && len(p) > len(best) {
				best = p
			}
		}
		if best != "" {
			out[k] = f.affected[best]
		}
	}
	return out, nil
}

func (f *fakeSource) Services(_ context.Context, names []string) (map[string]settings.Service, error) {
	if names == nil {
		return f.services, nil
	}
	out := map[string]settings.Service{}
	for _, n := range names {
		s, ok := f.services[n]
		if !ok {
			return nil, fmt.Errorf("no service %s", n)
		}
		out[n] = s
	}
	return out, nil
}

func (f *fakeSource) ConfigurationFiles(_ context.Context, names []string) (map[string]settings.ConfigurationFile, error) {
	out := map[string]settings.ConfigurationFile{}
	for _, n := range names {
		if c, ok := f.files[n]; ok {
			out[n] = c
		}
	}
	return out, nil
}

func (f *fakeSource) Model(context.Context) (map[string]any, error) { return f.model, nil }

type restartCall struct {
	Name    string
	Changed []string
}

type recorder struct {
	calls   []restartCall
	reloads int
}

func (r *recorder) Restart(_ context.Context, name string, _ settings.Service, changed []string) error {
	r.calls = append(r.calls, restartCall{name, changed})
	return nil
}

func (r *recorder) DaemonReload(context.Context) error { r.reloads++; return nil }

func newFixture(t *testing.T) (*fakeSource, string) {
	t.Helper()
	root := t.TempDir()
	tdir := filepath.Join(root, "usr/share/templates")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The shipped motd template; a strict hostname template (the shipped one
	// falls back to "localhost"), so that an unset hostname fails to render.
	strict := "[required-extensions]\nnetwork = \"v1\"\n+++\n{{ .settings.network.hostname }}\n"
	if err := os.WriteFile(filepath.Join(tdir, "hostname"), []byte(strict), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"motd"} {
		data, err := os.ReadFile(filepath.Join("templates", n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tdir, n), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(tdir, "unit"), []byte("[Service]\nEnvironment=X={{ .settings.motd }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{
		affected: map[string][]string{"settings.motd": {"motd", "unit"}, "settings.network": {"hostname"}},
		services: map[string]settings.Service{
			"motd":     {ConfigurationFiles: []string{"motd"}},
			"hostname": {ConfigurationFiles: []string{"hostname"}, RestartCommands: []string{"/usr/bin/settings-applier set-hostname /etc/hostname"}},
			"unit":     {ConfigurationFiles: []string{"unit"}},
		},
		files: map[string]settings.ConfigurationFile{
			"motd":     {Path: "/etc/motd", TemplatePath: "/usr/share/templates/motd", Mode: "0640"},
			"hostname": {Path: "/etc/hostname", TemplatePath: "/usr/share/templates/hostname"},
			"unit":     {Path: "/etc/systemd/system/x.service.d/10.conf", TemplatePath: "/usr/share/templates/unit"},
		},
		model: map[string]any{"settings": map[string]any{"motd": "hello"}},
	}
	return src, root
}

func TestApplierKeys(t *testing.T) {
	src, root := newFixture(t)
	rec := &recorder{}
	a := &Applier{Source: src, Restarter: rec, Root: root}
	res, err := a.Keys(context.Background(), []string{"settings.motd"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc/motd")); string(got) != "hello\n" {
		t.Fatalf("/etc/motd = %q", got)
	}
	if st, _ := os.Stat(filepath.Join(root, "etc/motd")); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode = %v", st.Mode())
	}
	want := []restartCall{{"motd", []string{"settings.motd"}}, {"unit", []string{"settings.motd"}}}
	if !reflect.DeepEqual(rec.calls, want) || rec.reloads != 1 {
		t.Fatalf("calls = %v reloads = %d, want %v and 1", rec.calls, rec.reloads, want)
	}
	if !reflect.DeepEqual(res.Written, []string{"/etc/motd", "/etc/systemd/system/x.service.d/10.conf"}) {
		t.Fatalf("written = %v", res.Written)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/hostname")); !os.IsNotExist(err) {
		t.Fatal("hostname rendered though unaffected")
	}
}

func TestApplierStrictFailureWritesNothing(t *testing.T) {
	src, root := newFixture(t)
	rec := &recorder{}
	a := &Applier{Source: src, Restarter: rec, Root: root}
	// network.hostname is unset: the hostname template fails strictly.
	_, err := a.Keys(context.Background(), []string{"settings.network.hostname", "settings.motd"})
	if err == nil || !strings.Contains(err.Error(), "configuration file hostname") {
		t.Fatalf("err = %v", err)
	}
	if len(rec.calls) != 0 {
		t.Fatalf("restarted %v after a render failure", rec.calls)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/motd")); !os.IsNotExist(err) {
		t.Fatal("motd written despite a strict failure")
	}
}

func TestApplierAllNonStrict(t *testing.T) {
	src, root := newFixture(t)
	rec := &recorder{}
	a := &Applier{Source: src, Restarter: rec, Root: root}
	res, err := a.All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Failed, []string{"/etc/hostname"}) {
		t.Fatalf("failed = %v", res.Failed)
	}
	if len(rec.calls) != 3 || rec.calls[0].Changed != nil {
		t.Fatalf("calls = %v", rec.calls)
	}
	// The unit drop-in was written at boot: systemd reloads before the
	// restarts, so a unit started later runs with it.
	if rec.reloads != 1 {
		t.Errorf("daemon-reloads = %d, want 1", rec.reloads)
	}
	if err := a.Apply(context.Background(), []string{"settings.unrelated"}); err != nil {
		t.Fatal(err)
	}
	if len(rec.calls) != 3 {
		t.Fatalf("an unrelated key restarted services: %v", rec.calls)
	}
}

type fakeUnits struct{ ops []string }

func (u *fakeUnits) TryRestartUnit(_ context.Context, unit string) error {
	u.ops = append(u.ops, "try-restart "+unit)
	return nil
}
func (u *fakeUnits) ReloadOrTryRestartUnit(_ context.Context, unit string) error {
	u.ops = append(u.ops, "reload-or-try-restart "+unit)
	return nil
}
func (u *fakeUnits) Reload(context.Context) error { u.ops = append(u.ops, "reload"); return nil }

func TestSystemRestarter(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "hook")
	out := filepath.Join(dir, "out")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s|%s' \"$1\" \"$CHANGED_SETTINGS\" > \"$2\"\necho hook ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	units := &fakeUnits{}
	var output bytes.Buffer
	r := SystemRestarter{Units: units, Output: &output}
	svc := settings.Service{RestartCommands: []string{
		"/bin/systemctl try-restart containerd.service host-containerd.service",
		"/usr/bin/systemctl try-reload-or-restart chronyd.service",
		script + " arg " + out,
	}}
	if err := r.Restart(context.Background(), "svc", svc, []string{"settings.a", "settings.b"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"try-restart containerd.service", "try-restart host-containerd.service", "reload-or-try-restart chronyd.service"}
	if !reflect.DeepEqual(units.ops, want) {
		t.Fatalf("ops = %v", units.ops)
	}
	if got, _ := os.ReadFile(out); string(got) != "arg|settings.a settings.b" {
		t.Fatalf("hook saw %q", got)
	}
	if output.String() != "hook ran\n" {
		t.Errorf("restart commands printed %q to Output, want the hook's line", output.String())
	}
	bad := settings.Service{RestartCommands: []string{"/bin/false"}}
	if err := r.Restart(context.Background(), "bad", bad, nil); err == nil || !strings.Contains(err.Error(), "restart service bad") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseMode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "-rw-r--r--", "0600": "-rw-------", "755": "-rwxr-xr-x"} {
		if m, err := parseMode(in); err != nil || m.String() != want {
			t.Errorf("parseMode(%q) = %v, %v; want %s", in, m, err, want)
		}
	}
	for in, want := range map[string]string{"0000": "gives nobody access", "0888": "not an octal file mode", "17777": "not an octal"} {
		if _, err := parseMode(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseMode(%q) = %v, want %q", in, err, want)
		}
	}
}
