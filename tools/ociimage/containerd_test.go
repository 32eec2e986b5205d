package ociimage

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/apiserver"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/hostctr"
	"github.com/petrel-os/petrel/sources/settings"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/sources/testkit/apitest"
	"github.com/petrel-os/petrel/sources/testkit/containerdtest"
	"github.com/petrel-os/petrel/sources/testkit/registrytest"
)

// lockedWriter lets the containers' output and host-ctr's log be written
// while the test reads them.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testImage makes an OCI layout whose only program is ctrprog and returns
// it with its OCI archive.
func testImage(t *testing.T, dir string) (*Layout, string) {
	t.Helper()
	tree := filepath.Join(dir, "tree")
	testkit.GoBuild(t, "./testdata/ctrprog", filepath.Join(tree, "ctrprog"))
	for _, d := range []string{"etc", "proc", "sys", "dev", "run", "tmp"} {
		os.MkdirAll(filepath.Join(tree, d), 0o755)
	}
	def := &Definition{Name: "test", Packages: []string{"none"}, Entrypoint: []string{"/ctrprog"}}
	l, err := WriteLayout(filepath.Join(dir, "layout"), tree, def, time.Unix(1700000000, 0), "petrel/test:1")
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "test.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(l.Dir, time.Unix(1700000000, 0), f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return l, archive
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestContainersInContainerd runs host and bootstrap containers with
// host-ctr's Runner in a real containerd (the shipped host containerd
// configuration), with a real API server and Debian's docker-registry
// (one open, one that wants a password): images from an OCI archive and
// pulled from a registry, bootstrap containers in name order with their
// modes and failures, a superpowered host container stopped on request,
// and the bad inputs a user can give (no such image, refused credentials,
// a registry not served).
func TestContainersInContainerd(t *testing.T) {
	dir := t.TempDir()
	ctrd := containerdtest.Start(t, containerdtest.Tools{Containerd: testkit.Tool(t, "containerd"), Runc: testkit.Tool(t, "runc"),
		Busybox: testkit.Tool(t, "/bin/busybox")}).Socket
	open := registrytest.Start(t, "", "")
	private := registrytest.Start(t, "petrel", "s3cret")
	apiSock := apitest.Serve(t, "1.0.0", func(_ string, store *datastore.Store) apiserver.Config {
		return apiserver.Config{Store: store, Validator: settings.Validator{}, SocketGID: -1}
	})
	client := apiclient.New(apiSock)
	t.Cleanup(client.Close)
	layout, archive := testImage(t, filepath.Join(dir, "img"))
	ctx := t.Context()
	for _, reg := range []struct {
		addr string
		cred Credentials
	}{{open, Credentials{}}, {private, Credentials{"petrel", "s3cret"}}} {
		if _, err := Push(ctx, layout, reg.addr+"/petrel/test:1", false, reg.cred); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Push(ctx, layout, private+"/petrel/test:1", false, Credentials{}); err == nil || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Errorf("push without credentials to a registry that wants them = %v, want 401 Unauthorized", err)
	}

	paths := hostctr.Paths{Local: filepath.Join(dir, "local"), APISocket: apiSock, APIClient: filepath.Join(dir, "apiclient"),
		OSRelease: filepath.Join(dir, "os-release"), StatusDir: filepath.Join(dir, "status"),
		RuncRoot: filepath.Join(dir, "runc"), FIFODir: filepath.Join(dir, "fifo")}
	os.WriteFile(paths.APIClient, []byte("#!/bin/false\n"), 0o755)
	os.WriteFile(paths.OSRelease, []byte("PRETTY_NAME=\"Petrel test\"\n"), 0o644)
	var out, logs bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("host-ctr log:\n%s\ncontainer output:\n%s", logs.String(), out.String())
		}
	})
	runner, err := hostctr.NewRunner(ctx, ctrd, hostctr.DefaultNamespace, paths, &lockedWriter{&sync.Mutex{}, &out},
		slog.New(slog.NewTextHandler(&lockedWriter{&sync.Mutex{}, &logs}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer runner.Close()

	set := func(doc string) {
		t.Helper()
		var v map[string]any
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatal(err)
		}
		if err := client.Set(ctx, "test", v); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Commit(ctx, "test"); err != nil {
			t.Fatal(err)
		}
	}
	set(fmt.Sprintf(`{"container-registry":{"insecure-registries":[%q,%q],"credentials":[{"registry":%q,"username":"petrel","password":"s3cret"}]},
	  "bootstrap-containers":{
	    "a-archive":{"source":"oci-archive:%s","mode":"once","user-data":%q},
	    "b-pulled":{"source":"%s/petrel/test:1","mode":"always","user-data":%q},
	    "c-private":{"source":"%s/petrel/test:1","mode":"always","user-data":%q},
	    "d-fails":{"source":"oci-archive:%s","mode":"always","user-data":%q},
	    "e-missing":{"source":"%s/petrel/nosuch:1","mode":"always","user-data":""},
	    "f-off":{"source":"oci-archive:%s","mode":"off"}}}`,
		open, private, private, archive, b64("exit 0"), open, b64("exit 0"), private, b64("exit 0"), archive, b64("exit 3"), open, archive))

	statuses := func() map[string]api.ContainerStatus {
		t.Helper()
		st, err := api.ReadContainerStatuses(paths.StatusDir)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if err := runner.RunBootstrap(ctx, client, nil); err != nil {
		t.Fatalf("RunBootstrap without an essential failure = %v", err)
	}
	st := statuses()
	for id, want := range map[string]string{
		"boot.a-archive": "succeeded", "boot.b-pulled": "succeeded", "boot.c-private": "succeeded",
		"boot.d-fails":   "failed: bootstrap container d-fails: exited with status 3",
		"boot.e-missing": "failed: bootstrap container e-missing: pull " + open + "/petrel/nosuch:1: failed to resolve reference \"" + open + "/petrel/nosuch:1\": " + open + "/petrel/nosuch:1: not found",
		"boot.f-off":     "off",
	} {
		got := string(st[id].State)
		if st[id].Error != "" {
			got += ": " + st[id].Error
		}
		if got != want {
			t.Errorf("status of %s = %q, want %q", id, got, want)
		}
	}
	// once: turned off through the API; the others keep their mode.
	m, err := client.Get(ctx, "settings.bootstrap-containers")
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]any{}
	for n, v := range m["bootstrap-containers"].(map[string]any) {
		modes[n] = v.(map[string]any)["mode"]
	}
	if fmt.Sprint(modes) != "map[a-archive:off b-pulled:always c-private:always d-fails:always e-missing:always f-off:off]" {
		t.Errorf("modes after the run = %v", modes)
	}
	// What the container saw: its user data, the API socket, apiclient
	// and the os-release, not the host root; bootstrap containers share
	// the host's PID namespace, so the program is not PID 1.
	report := readJSON(t, filepath.Join(paths.Local, "bootstrap-containers", "a-archive", "report.json"))
	if report["user-data"] != "exit 0" || report["api-socket"] != true || report["apiclient"] != true || report["host-root"] != false ||
		report["pid-1"] != false || report["release"] != `PRETTY_NAME="Petrel test"` {
		t.Errorf("bootstrap container a-archive saw %v", report)
	}

	// A second run: the once container does not run again, the always
	// ones do; an essential failure is ErrEssentialFailed.
	set(`{"bootstrap-containers":{"d-fails":{"essential":true}}}`)
	err = runner.RunBootstrap(ctx, client, nil)
	if !errors.Is(err, hostctr.ErrEssentialFailed) || !strings.Contains(err.Error(), "bootstrap container d-fails: exited with status 3") {
		t.Errorf("RunBootstrap with an essential failure = %v", err)
	}
	for name, want := range map[string]string{"a-archive": "1", "b-pulled": "2", "d-fails": "2"} {
		if got := readFile(t, filepath.Join(paths.Local, "bootstrap-containers", name, "runs")); got != want {
			t.Errorf("runs of %s = %s, want %s", name, got, want)
		}
	}

	// The host containerd does not start: every container that was to run
	// fails with that cause; the boot fails only for the essential one.
	err = runner.RunBootstrap(ctx, client, func(context.Context) error { return errors.New("start the host containerd: no") })
	if !errors.Is(err, hostctr.ErrEssentialFailed) || !strings.Contains(err.Error(), "bootstrap container d-fails: start the host containerd: no") {
		t.Errorf("RunBootstrap without a containerd = %v", err)
	}
	if s := statuses()["boot.b-pulled"]; s.State != api.ContainerFailed || s.Error != "bootstrap container b-pulled: start the host containerd: no" {
		t.Errorf("status of b-pulled without a containerd = %+v", s)
	}
	if got := readFile(t, filepath.Join(paths.Local, "bootstrap-containers", "b-pulled", "runs")); got != "2" {
		t.Errorf("b-pulled ran without a containerd: runs = %s", got)
	}

	// A superpowered host container: running until stopped.
	set(fmt.Sprintf(`{"host-containers":{"admin":{"enabled":true,"superpowered":true,"source":"%s/petrel/test:1","user-data":%q},
	  "short":{"enabled":true,"source":"oci-archive:%s","user-data":%q}}}`, open, b64("serve"), archive, b64("exit 7")))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runner.RunHost(runCtx, client, "admin") }()
	waitState(t, paths.StatusDir, "admin", api.ContainerRunning)
	report = readJSONEventually(t, filepath.Join(paths.Local, "host-containers", "admin", "report.json"))
	if report["host-root"] != true || report["pid-1"] != false || report["user-data"] != "serve" {
		t.Errorf("superpowered host container saw %v", report)
	}
	if st := statuses()["admin"]; st.PID == 0 || !strings.HasPrefix(st.Image, "sha256:") || st.Image != layout.Manifest.Digest.String() {
		t.Errorf("status of the running admin container = %+v, want its PID and image %s", st, layout.Manifest.Digest)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("RunHost after a stop = %v, want nil", err)
	}
	if st := statuses()["admin"]; st.State != api.ContainerStopped {
		t.Errorf("status after the stop = %+v", st)
	}
	if got := readFile(t, filepath.Join(paths.Local, "host-containers", "admin", "stopped")); got != "SIGTERM" {
		t.Errorf("the stopped container got %q, want SIGTERM", got)
	}
	// A host container whose task exits is an error (systemd restarts it).
	err = runner.RunHost(ctx, client, "short")
	if err == nil || err.Error() != "host container short: its task exited with status 7" {
		t.Errorf("RunHost of a container that exits = %v", err)
	}
	if st := statuses()["short"]; st.State != api.ContainerExited || st.ExitCode == nil || *st.ExitCode != 7 {
		t.Errorf("status of the exited container = %+v", st)
	}
	// A registry that refuses: the wrong password.
	set(fmt.Sprintf(`{"container-registry":{"credentials":[{"registry":%q,"username":"petrel","password":"wrong"}]},"host-containers":{"admin":{"source":"%s/petrel/test:1"}}}`, private, private))
	err = runner.RunHost(ctx, client, "admin")
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Errorf("RunHost from a registry that refuses = %v, want 401 Unauthorized", err)
	}
	// Nothing left behind in containerd.
	if err := runner.CleanUp(ctx, "admin"); err != nil {
		t.Error(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(readFile(t, path)), &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

func readJSONEventually(t *testing.T, path string) map[string]any {
	t.Helper()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(path); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return readJSON(t, path)
}

func waitState(t *testing.T, dir, id string, want api.ContainerState) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, _ := api.ReadContainerStatuses(dir)
		if st[id].State == want {
			return
		}
		if st[id].State == api.ContainerFailed {
			t.Fatalf("status of %s = %+v, want %s", id, st[id], want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of %s = %+v, want %s", id, st[id], want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
