package render_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/apiserver"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/render"
	"github.com/petrel-os/petrel/sources/settings"
	"github.com/petrel-os/petrel/sources/userdata"
)

// recorder records restarts instead of touching systemd.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) Restart(_ context.Context, name string, _ settings.Service, _ []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, name)
	return nil
}

func (r *recorder) DaemonReload(context.Context) error { return nil }

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// host is one simulated Petrel host: its datastore, /etc root and state.
type host struct {
	t        *testing.T
	base     string // datastore base
	root     string // file system root for rendered files and templates
	userData string
	marker   string
	sock     string // the API socket of the last boot
	rec      *recorder
}

func newHost(t *testing.T) *host {
	dir := t.TempDir()
	h := &host{t: t, base: filepath.Join(dir, "datastore"), root: filepath.Join(dir, "root"),
		userData: filepath.Join(dir, "user-data.toml"), marker: filepath.Join(dir, "early-boot-config.ran"), rec: &recorder{}}
	tdir := filepath.Join(h.root, "usr/share/templates")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"motd", "hostname", "modprobe-conf", "modules-load"} {
		data, err := os.ReadFile(filepath.Join("templates", n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tdir, n), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// boot runs the boot pipeline: storewolf, apiserver, early-boot-config,
// settings-committer, settings-applier --all. It returns a client of the
// still running API server and a function stopping it.
func (h *host) boot(ctx context.Context) (*apiclient.Client, *render.Applier, func()) {
	t := h.t
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := settings.LoadDefaults(ctx, "../settings/defaults")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := settings.Storewolf(ctx, settings.StorewolfConfig{Base: h.base, Version: "1.0.0"}, d); err != nil {
		t.Fatal(err)
	}
	store, err := datastore.Open(ctx, filepath.Join(h.base, "current"))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "api.sock")
	h.sock = sock
	client := apiclient.New(sock)
	// The shipped wiring, but for the applier: this one runs in process,
	// writes under h.root and records restarts (sources/agent's
	// TestShippedUnits runs the shipped one).
	opts := apiserver.DefaultOptions()
	opts.SocketPath, opts.SocketGID = sock, os.Getgid()
	opts.UpdateStatus, opts.UpdateLock = filepath.Join(h.root, "update-status.json"), filepath.Join(h.root, "update.lock")
	cfg, err := opts.Config(store, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	applier := &render.Applier{Source: render.APISource{Client: client}, Restarter: h.rec, Root: h.root, Logger: log}
	cfg.Applier = applier
	srv := apiserver.New(cfg)
	ln, err := apiserver.Listen(sock, -1, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		client.Close()
		store.Close()
	}

	if _, err := userdata.Run(ctx, userdata.Config{
		Providers:   []userdata.Provider{userdata.FileProvider{Path: h.userData}},
		API:         client,
		Transaction: api.LaunchTransaction,
		Marker:      h.marker,
		Logger:      log,
	}); err != nil {
		stop()
		t.Fatal(err)
	}
	if _, err := settings.Commit(ctx, client, api.LaunchTransaction, log); err != nil {
		stop()
		t.Fatal(err)
	}
	if _, err := applier.All(ctx); err != nil {
		stop()
		t.Fatal(err)
	}
	return client, applier, stop
}

func (h *host) read(path string) string {
	data, err := os.ReadFile(filepath.Join(h.root, path))
	if err != nil {
		h.t.Fatal(err)
	}
	return string(data)
}

func TestBootPipeline(t *testing.T) {
	ctx := context.Background()
	h := newHost(t)
	userData := `[settings]
motd = "hello from user data"
[settings.network]
hostname = "petrel-test"
[settings.kernel.sysctl]
"vm.max_map_count" = "262144"
[settings.kernel.modules.sctp]
allowed = false
[settings.kernel.modules.dummy]
autoload = true
`
	if err := os.WriteFile(h.userData, []byte(userData), 0o644); err != nil {
		t.Fatal(err)
	}

	// First boot.
	client, _, stop := h.boot(ctx)
	if got := h.read("etc/motd"); got != "hello from user data\n" {
		t.Fatalf("/etc/motd = %q", got)
	}
	if got := h.read("etc/hostname"); got != "petrel-test\n" {
		t.Fatalf("/etc/hostname = %q", got)
	}
	if got := h.read("etc/modprobe.d/50-petrel-settings.conf"); !strings.HasSuffix(got, "\nblacklist sctp\ninstall sctp /bin/false\n") {
		t.Fatalf("modprobe.d file = %q; want sctp refused", got)
	}
	if got := h.read("etc/modules-load.d/50-petrel-settings.conf"); !strings.HasSuffix(got, "not allowed = false).\ndummy\n") {
		t.Fatalf("modules-load.d file = %q; want dummy", got)
	}
	if got := h.rec.take(); !reflect.DeepEqual(got, []string{"host-containers", "hostname", "kernel-modules", "lockdown", "motd", "sysctl"}) {
		t.Fatalf("restarted %v at boot", got)
	}
	// The restart commands of sysctl and kernel-modules read the settings
	// the API serves and apply them (to a fake procfs, sysfs and modprobe).
	proc, sys := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(proc, "sys/vm"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "sys/vm/max_map_count"), []byte("65530\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(sys, "module/dummy"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		out  string
	}{
		{[]string{"set-sysctl", "--proc", proc}, "petrel: sysctl vm.max_map_count = 262144\n"},
		// /bin/true stands for modprobe; the module is "loaded" already.
		{[]string{"load-modules", "--modprobe", "/bin/true", "--sys", sys}, "petrel: kernel module dummy loaded\n"},
	} {
		var out, errs strings.Builder
		if code := render.Run(ctx, append(c.args, "--socket-path", h.sock), strings.NewReader(""), &out, &errs); code != 0 || out.String() != c.out {
			t.Fatalf("settings-applier %v = exit %d, %q (%s); want 0, %q", c.args, code, out.String(), errs.String(), c.out)
		}
	}
	if _, err := os.Stat(h.marker); err != nil {
		t.Fatalf("marker: %v", err)
	}

	// A live change restarts only the affected service.
	if err := client.Set(ctx, "change", map[string]any{"motd": "changed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CommitAndApply(ctx, "change"); err != nil {
		t.Fatal(err)
	}
	if got := h.read("etc/motd"); got != "changed\n" {
		t.Fatalf("/etc/motd after change = %q", got)
	}
	if got := h.rec.take(); !reflect.DeepEqual(got, []string{"motd"}) {
		t.Fatalf("restarted %v after a motd change", got)
	}
	// A sysctl whose key holds dots, and a module, each restart their own
	// service only.
	for _, c := range []struct {
		patch   map[string]any
		service string
	}{
		{map[string]any{"kernel": map[string]any{"sysctl": map[string]any{"vm.swappiness": "17"}}}, "sysctl"},
		{map[string]any{"kernel": map[string]any{"modules": map[string]any{"veth": map[string]any{"autoload": true}}}}, "kernel-modules"},
	} {
		if err := client.Set(ctx, "kernel", c.patch); err != nil {
			t.Fatal(err)
		}
		if _, err := client.CommitAndApply(ctx, "kernel"); err != nil {
			t.Fatal(err)
		}
		if got := h.rec.take(); !reflect.DeepEqual(got, []string{c.service}) {
			t.Fatalf("restarted %v after setting %v; want %s", got, c.patch, c.service)
		}
	}
	if got := h.read("etc/modules-load.d/50-petrel-settings.conf"); !strings.HasSuffix(got, ").\ndummy\nveth\n") {
		t.Fatalf("modules-load.d file after a change = %q; want dummy and veth", got)
	}

	// Bad input through the API names the key path.
	err := client.Set(ctx, "bad", map[string]any{"network": map[string]any{"hostname": 5}})
	var se *apiclient.StatusError
	if !asStatus(err, &se) || se.Code != 400 || !contains(se.Body, "settings.network.hostname: expected a string, got number") {
		t.Fatalf("bad patch: %v", err)
	}
	stop()

	// Second boot: the user data changed, but it is applied only once.
	if err := os.WriteFile(h.userData, []byte("[settings]\nmotd = \"second boot\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, stop = h.boot(ctx)
	defer stop()
	if got := h.read("etc/motd"); got != "changed\n" {
		t.Fatalf("/etc/motd on second boot = %q (user data re-applied or default restored)", got)
	}
	if got := h.read("etc/hostname"); got != "petrel-test\n" {
		t.Fatalf("/etc/hostname on second boot = %q", got)
	}
}
