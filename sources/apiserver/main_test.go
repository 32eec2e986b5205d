package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/hostexec"
	"github.com/petrel-os/petrel/sources/settings"
	"github.com/petrel-os/petrel/sources/testkit"
)

// peerEnv makes the test binary act as an unprivileged API client.
const peerEnv = "APISERVER_TEST_PEER_SOCKET"

func TestMain(m *testing.M) {
	if state := os.Getenv(fakeUpdaterEnv); state != "" {
		os.Exit(runFakeUpdater(state, os.Args[1:], os.Stdout, os.Stderr))
	}
	if sock := os.Getenv(peerEnv); sock != "" {
		c := apiclient.New(sock)
		code, body, err := c.Raw(context.Background(), http.MethodGet, "/settings", nil)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(code, string(body))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestAuthorizer(t *testing.T) {
	t.Parallel()
	a := authorizer{gid: 274, groups: func(pid int) ([]int, error) {
		if pid == 7 {
			return []int{10, 274}, nil
		}
		return []int{10}, nil
	}}
	for _, tt := range []struct {
		name string
		cred peerCred
		ok   bool
	}{
		{"root", peerCred{ok: true, pid: 1, uid: 0, gid: 0}, true},
		{"primary group", peerCred{ok: true, pid: 2, uid: 1000, gid: 274}, true},
		{"supplementary group", peerCred{ok: true, pid: 7, uid: 1000, gid: 1000}, true},
		{"stranger", peerCred{ok: true, pid: 3, uid: 1000, gid: 1000}, false},
		{"unknown peer", peerCred{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := a.allow(tt.cred); (err == nil) != tt.ok {
				t.Errorf("allow(%+v) = %v, want ok=%v", tt.cred, err, tt.ok)
			}
		})
	}
	if err := (authorizer{gid: -1}).allow(peerCred{ok: true, uid: 5, gid: 5}); err == nil {
		t.Errorf("gid -1 admitted uid 5")
	}
}

// TestPeerCredForbidden connects as uid 65534 through a world-writable
// socket: SO_PEERCRED must refuse it with 403.
func TestPeerCredForbidden(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatalf("this test must run as root to start a client as uid 65534 (it runs as root in CI)")
	}
	h := startServer(t, nil, 0o666)
	if err := os.Chmod(filepath.Dir(h.socket), 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary's own directory is private; run a copy.
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	peer := filepath.Join(filepath.Dir(h.socket), "peer.test")
	if err := os.WriteFile(peer, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(peer, "-test.run=^$")
	cmd.Env = append(os.Environ(), peerEnv+"="+h.socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("peer client: %v: %s", err, out)
	}
	if !strings.HasPrefix(string(out), "403 Forbidden: uid 65534 is not root") {
		t.Errorf("unprivileged peer got %q, want 403", out)
	}
	code, _, err := h.client.Raw(context.Background(), http.MethodGet, "/settings", nil)
	if err != nil || code != 200 {
		t.Errorf("root peer got %d, %v", code, err)
	}
}

// TestMainNotifiesAndShutsDown runs Main with a fake systemd notify socket.
func TestMainNotifiesAndShutsDown(t *testing.T) {
	dir := shortTempDir(t)
	cur, err := datastore.Create(filepath.Join(dir, "ds"), "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	notifyPath := filepath.Join(dir, "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	t.Setenv("NOTIFY_SOCKET", notifyPath)
	sock := filepath.Join(dir, "api.sock")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"--datastore-path", cur, "--socket-path", sock, "--socket-gid", "0", "--os-release", filepath.Join(dir, "none"),
			"--updater", filepath.Join(dir, "none"), "--update-status", filepath.Join(dir, "status.json"), "--update-lock", filepath.Join(dir, "lock")}, &stderr, &stderr)
	}()
	buf := make([]byte, 64)
	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := nc.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		cancel()
		t.Fatalf("notify = %q, %v; stderr: %s", buf[:n], err, stderr.String())
	}
	st, err := os.Stat(sock)
	if err != nil || st.Mode().Perm() != 0o660 || st.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode = %v, %v, want socket 0660", st.Mode(), err)
	}
	c := apiclient.New(sock)
	if _, err := c.Get(context.Background(), ""); err != nil {
		t.Errorf("Get: %v", err)
	}
	c.Close()
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("Main = %d, want 0; stderr: %s", code, stderr.String())
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	if code := Main(context.Background(), []string{"--bogus"}, &stderr, &stderr); code != 2 {
		t.Errorf("Main(--bogus) = %d, want 2", code)
	}
	if code := Main(context.Background(), []string{"--datastore-path", filepath.Join(dir, "missing")}, &stderr, &stderr); code != 1 {
		t.Errorf("Main(missing datastore) = %d, want 1", code)
	}
}

// TestMainFlags checks the command line: usage errors exit 2 with a
// message and --help exits 0. sources/cli checks the unit files.
func TestMainFlags(t *testing.T) {
	t.Parallel()
	testkit.CheckMain(t, testkit.NoStdin(Main), []testkit.MainCase{
		{Name: "help", Args: []string{"--help"}, Code: 0, Out: "--datastore-path"},
		{Name: "unknown flag", Args: []string{"--bogus"}, Code: 2, Err: "apiserver: unknown flag: --bogus"},
		{Name: "single-dash long flag", Args: []string{"-datastore-path", "/x"}, Code: 2, Err: "unknown shorthand flag"},
		{Name: "no datastore", Args: nil, Code: 2, Err: "--datastore-path is required"},
		{Name: "argument", Args: []string{"--datastore-path", "/x", "extra"}, Code: 2, Err: `unknown command "extra"`},
		{Name: "bad log level", Args: []string{"--datastore-path", "/x", "--log-level", "loud"}, Code: 2, Err: `bad --log-level "loud"`},
		{Name: "bad gid", Args: []string{"--datastore-path", "/x", "--socket-gid", "api"}, Code: 2, Err: "--socket-gid"},
	})
}

// buildServer builds the multi-call binary cmd/petrel into dir and links
// apiserver to it, as the image ships it (/usr/bin/apiserver → petrel).
func buildServer(t *testing.T, dir string) string {
	t.Helper()
	testkit.GoBuild(t, "github.com/petrel-os/petrel/cmd/petrel", filepath.Join(dir, "petrel"))
	testkit.Symlinks(t, dir, map[string]string{"apiserver": "petrel"})
	return filepath.Join(dir, "apiserver")
}

// updateFlags keeps the update routes of an apiserver run by a test in
// dir, away from the machine's /run.
func updateFlags(dir string) []string {
	return []string{"--updater", filepath.Join(dir, "no-updater"), "--update-status", filepath.Join(dir, "update-status.json"),
		"--update-lock", filepath.Join(dir, "update.lock")}
}

func waitForSocket(t *testing.T, c *apiclient.Client, proc *os.Process) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if code, _, err := c.Raw(context.Background(), http.MethodGet, "/tx/list", nil); err == nil && code == 200 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	proc.Kill()
	t.Fatalf("apiserver did not come up")
}

// TestCrashAtomicity SIGKILLs the real apiserver binary at random moments
// during a stream of multi-key PATCH+commit pairs and checks after each
// restart that no transaction is half applied, no acknowledged commit is
// lost, and the interrupted generation's pending transaction is whole:
// present with all its keys if its PATCH was acknowledged and its commit
// did not become durable, absent if the commit did, and either whole or
// absent if the PATCH itself was interrupted.
func TestCrashAtomicity(t *testing.T) {
	dir := shortTempDir(t)
	bin := buildServer(t, dir)
	cur, err := datastore.Create(filepath.Join(dir, "ds"), "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "api.sock")
	const kills = 40
	acked := -1 // highest generation whose commit returned 200
	gen := 0
	patched := false // whether gen's PATCH returned 204
	cases := map[string]int{}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range kills {
		cmd := exec.Command(bin, append(updateFlags(dir), "--datastore-path", cur, "--socket-path", sock, "--socket-gid", "0", "--log-level", "error")...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c := apiclient.New(sock)
		waitForSocket(t, c, cmd.Process)
		live := checkGeneration(t, c, round, acked, gen)
		cases[checkPending(t, c, round, gen, patched, live)]++
		killAt := time.Now().Add(time.Duration(rng.IntN(150)+5) * time.Millisecond)
		errc := make(chan error, 1)
		go func() {
			time.Sleep(time.Until(killAt))
			errc <- cmd.Process.Signal(syscall.SIGKILL)
		}()
		for {
			gen++
			patched = false
			tx := fmt.Sprintf("gen-%d", gen)
			patch := crashPatch(gen)
			// Both calls fail once the server is killed.
			if err := c.Set(context.Background(), tx, patch); err != nil {
				break
			}
			patched = true
			if _, err := c.Commit(context.Background(), tx); err != nil {
				break
			}
			acked = gen
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		c.Close()
	}
	cmd := exec.Command(bin, append(updateFlags(dir), "--datastore-path", cur, "--socket-path", sock, "--socket-gid", "0", "--log-level", "error")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := apiclient.New(sock)
	waitForSocket(t, c, cmd.Process)
	live := checkGeneration(t, c, kills, acked, gen)
	cases[checkPending(t, c, kills, gen, patched, live)]++
	delete(cases, "")
	c.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("apiserver exit after SIGTERM: %v", err)
	}
	if acked < kills {
		t.Errorf("only %d commits acknowledged over %d runs; the crash test exercised too little", acked, kills)
	}
	t.Logf("%d kills, %d commits acknowledged, %d attempted; kill during: %v", kills, acked, gen, cases)
}

// crashPatch is generation gen of the four crash settings: two nested a
// level deeper than the other two, in two namespaces of the model (the
// shipped server validates).
func crashPatch(gen int) map[string]any {
	src := fmt.Sprintf("crash:g%d", gen)
	return map[string]any{
		"host-containers": map[string]any{"crash-a": map[string]any{"source": src}, "crash-b": map[string]any{"source": src}},
		"kernel":          map[string]any{"sysctl": map[string]any{"crash.c": strconv.Itoa(gen), "crash.d": strconv.Itoa(gen)}},
	}
}

// crashBody is the shape of the crash settings, live or pending.
type crashBody struct {
	HostContainers struct {
		A *struct{ Source string } `json:"crash-a"`
		B *struct{ Source string } `json:"crash-b"`
	} `json:"host-containers"`
	Kernel struct {
		Sysctl struct {
			C *string `json:"crash.c"`
			D *string `json:"crash.d"`
		} `json:"sysctl"`
	} `json:"kernel"`
}

// generation returns the one generation that all four keys hold, -1 if
// none is set, or an error if they differ or some are missing.
func (b crashBody) generation() (int, error) {
	var vals []string
	for _, hc := range []*struct{ Source string }{b.HostContainers.A, b.HostContainers.B} {
		if hc != nil {
			vals = append(vals, strings.TrimPrefix(hc.Source, "crash:g"))
		}
	}
	for _, v := range []*string{b.Kernel.Sysctl.C, b.Kernel.Sysctl.D} {
		if v != nil {
			vals = append(vals, *v)
		}
	}
	switch {
	case len(vals) == 0:
		return -1, nil
	case len(vals) < 4:
		return 0, fmt.Errorf("keys missing")
	}
	for _, v := range vals[1:] {
		if v != vals[0] {
			return 0, fmt.Errorf("keys of different generations")
		}
	}
	return strconv.Atoi(vals[0])
}

// checkPending asserts the state of transaction gen-<gen>, the one in
// flight when the server was killed (live is the live generation), and
// returns which case it was: "" before the first kill, else "patch
// interrupted", "commit not durable" or "commit durable".
func checkPending(t *testing.T, c *apiclient.Client, round, gen int, patched bool, live int) string {
	t.Helper()
	if gen == 0 {
		return ""
	}
	_, body, err := c.Raw(context.Background(), http.MethodGet, fmt.Sprintf("/tx?tx=gen-%d", gen), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got crashBody
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("round %d: decode %s: %v", round, body, err)
	}
	g, err := got.generation()
	switch {
	case err != nil:
		t.Fatalf("round %d: half-written pending transaction gen-%d: %s", round, gen, body)
	case live == gen && g != -1:
		t.Fatalf("round %d: committed transaction gen-%d still pending: %s", round, gen, body)
	case live != gen && patched && g != gen:
		t.Fatalf("round %d: acknowledged PATCH of gen-%d lost: %s", round, gen, body)
	case g != -1 && g != gen:
		t.Fatalf("round %d: transaction gen-%d holds generation %d", round, gen, g)
	}
	switch {
	case live == gen:
		return "commit durable"
	case patched:
		return "commit not durable"
	}
	return "patch interrupted"
}

// checkGeneration asserts that the four crash keys hold one generation g
// with acked <= g <= attempted (or are all absent before any ack), and
// returns it (-1 when absent).
func checkGeneration(t *testing.T, c *apiclient.Client, round, acked, attempted int) int {
	t.Helper()
	_, body, err := c.Raw(context.Background(), http.MethodGet, "/settings", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got crashBody
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("round %d: decode %s: %v", round, body, err)
	}
	g, err := got.generation()
	switch {
	case err != nil:
		t.Fatalf("round %d: half-applied transaction: %s", round, body)
	case g == -1 && acked >= 0:
		t.Fatalf("round %d: acknowledged generation %d lost: %s", round, acked, body)
	case g != -1 && (g < acked || g > attempted):
		t.Fatalf("round %d: generation %d outside [acked %d, attempted %d]", round, g, acked, attempted)
	}
	return g
}

// TestProductionConfig checks the wiring Main serves with: the settings
// model, the settings applier told the socket, systemctl, the shipped
// limits, the update routes. TestShippedUnits (sources/agent) runs it from the shipped unit.
func TestProductionConfig(t *testing.T) {
	o := DefaultOptions()
	o.SocketPath = "/run/test.sock"
	o.SocketGID = 0
	var stderr bytes.Buffer
	cfg, err := o.Config(nil, slog.New(slog.DiscardHandler), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Validator.(settings.Validator); !ok {
		t.Errorf("Validator = %T, want settings.Validator", cfg.Validator)
	}
	if a, ok := cfg.Applier.(CommandApplier); !ok || a.Path != "/usr/bin/settings-applier" || a.SocketPath != "/run/test.sock" || a.Output != &stderr {
		t.Errorf("Applier = %#v, want the settings applier told /run/test.sock, output to stderr", cfg.Applier)
	}
	if r, ok := cfg.Rebooter.(SystemctlRebooter); !ok || r.Path != "/usr/bin/systemctl" {
		t.Errorf("Rebooter = %#v", cfg.Rebooter)
	}
	if cfg.Limits != DefaultLimits() || cfg.MaxBodyBytes != api.MaxBodyBytes || cfg.SocketGID != 0 {
		t.Errorf("Limits %+v, MaxBodyBytes %d, SocketGID %d; want the defaults, %d, 0", cfg.Limits, cfg.MaxBodyBytes, cfg.SocketGID, api.MaxBodyBytes)
	}
	if u := cfg.Updates; u == nil || *u != (UpdateConfig{Updater: "/usr/bin/updater", SocketPath: "/run/test.sock", StatusPath: "/run/petrel/update-status.json",
		LockPath: "/run/lock/petrel-update-api.lock", Timeouts: DefaultUpdateTimeouts()}) {
		t.Errorf("Updates = %+v, want the updater agent told the socket, the status on /run and the lock of the contract", u)
	}
	if e := cfg.Exec; e == nil || *e != (hostexec.Config{Socket: "/run/host-containerd/containerd.sock", Namespace: "default", FIFODir: "/run/petrel/exec"}) {
		t.Errorf("Exec = %+v, want the host containerd's socket and namespace of the contract", e)
	}
	o.Applier = ""
	if cfg, _ := o.Config(nil, slog.New(slog.DiscardHandler), &stderr); fmt.Sprintf("%T", cfg.Applier) != "apiserver.LogApplier" {
		t.Errorf("--applier \"\": Applier = %T, want LogApplier", cfg.Applier)
	}
}

// TestCommandApplier runs a program in the applier's place: it gets
// --daemon, --socket-path and the keys on stdin (or --all), and what it
// prints reaches Output, and the error when it fails.
func TestCommandApplier(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "applier")
	script := "#!/bin/sh\necho \"args: $*\"\necho \"keys: $(cat)\"\n[ \"$3\" != /fail.sock ]\n"
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	a := CommandApplier{Path: prog, SocketPath: "/run/x.sock", Output: &out}
	if err := a.Apply(context.Background(), []string{"settings.motd", "settings.network.hostname"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	want := "args: --daemon --socket-path /run/x.sock\nkeys: [\"settings.motd\",\"settings.network.hostname\"]\n" +
		"args: --daemon --socket-path /run/x.sock --all\nkeys: \n"
	if out.String() != want {
		t.Errorf("applier output %q, want %q", out.String(), want)
	}
	a.SocketPath = "/fail.sock"
	if err := a.Apply(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "exit status 1: args: --daemon --socket-path /fail.sock --all") {
		t.Errorf("failing applier: %v, want its exit status and output", err)
	}
}
