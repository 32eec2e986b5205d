package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/generator"
	"github.com/petrel-os/petrel/sources/testkit"
)

// bootOrder returns the order in which systemd starts the units that run
// Petrel agents (their After=/Before= lines; docs/host.md). Every such
// unit under packages/ must be listed.
func bootOrder() []string {
	return []string{
		"migrator.service",
		"storewolf.service",
		"apiserver.service",
		"early-boot-config.service",
		"sundog.service",
		"pluto.service", // aws Kubernetes variants (kubernetes-aws)
		"settings-applier.service",
		"petrel-resolv-conf.service", // Kubernetes variants (kubernetes-host)
		"bootstrap-containers.service",
		"mark-successful-boot.service",
		"petrel-ready.service",
	}
}

// noBootDisk returns the units whose agents need the host's boot disk,
// which a temporary root does not have, with what their output must name:
// they are started with their unit's arguments and must get past parsing
// them (exit 1 with the disk lookup named, not the usage exit 2).
func noBootDisk() map[string]string {
	return map[string]string{
		"mark-successful-boot.service": "find OS disk",
		"petrel-ready.service":         "find booted bank",
	}
}

// unit is what the test takes from a unit file.
type unit struct {
	name       string
	typ        string     // Type=
	conditions []string   // ConditionPathExists= and ConditionPathIsSymbolicLink= (prefixed "link:")
	pre        [][]string // ExecStartPre=, in order
	start      []string   // ExecStart=
}

// readUnits parses every packages/*/*.service that runs a Petrel agent.
func readUnits(t *testing.T) map[string]unit {
	t.Helper()
	files, err := filepath.Glob("../../packages/*/*.service")
	if err != nil || len(files) == 0 {
		t.Fatalf("no unit files under packages/: %v", err)
	}
	agents := Agents()
	units := map[string]unit{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		u := unit{name: filepath.Base(f), typ: "simple"}
		petrel := false
		for n, line := range strings.Split(string(data), "\n") {
			key, val, ok := strings.Cut(strings.TrimSpace(line), "=")
			if !ok || strings.HasPrefix(key, "#") || strings.HasPrefix(key, ";") {
				continue
			}
			switch key {
			case "Type":
				u.typ = val
			case "ConditionPathExists":
				u.conditions = append(u.conditions, val)
			case "ConditionPathIsSymbolicLink":
				u.conditions = append(u.conditions, "link:"+val)
			case "ExecStart", "ExecStartPre":
				argv, err := generator.Split(val)
				if err != nil || len(argv) == 0 {
					t.Fatalf("%s:%d: cannot split %q: %v", f, n+1, val, err)
				}
				if strings.HasPrefix(argv[0], "/usr/bin/") {
					if _, ok := agents[filepath.Base(argv[0])]; ok {
						petrel = true
					}
				}
				if key == "ExecStart" {
					u.start = argv
				} else {
					u.pre = append(u.pre, argv)
				}
			}
		}
		// Template units (host-containers@.service) are not started by
		// the boot but by host-ctr configure, one per host container.
		if petrel && !strings.Contains(u.name, "@") {
			units[u.name] = u
		}
	}
	var names []string
	for n := range units {
		names = append(names, n)
	}
	slices.Sort(names)
	want := bootOrder()
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("units that run Petrel agents: %v; the test knows the boot order of %v", names, want)
	}
	return units
}

// sandbox is a temporary root file system laid out as the os and host
// packages install it (packages/os/os.spec, packages/host/host.spec), in
// which the agents run under bubblewrap with their own UTS, IPC and
// network namespaces: nothing they do reaches the machine running the
// test but the files of the root.
type sandbox struct {
	t    *testing.T
	root string
	mu   sync.Mutex               // guards the buffers in logs, which agents write while the test reads
	logs map[string]*bytes.Buffer // unit name → the agents' output
}

func newSandbox(t *testing.T) *sandbox {
	dir, err := os.MkdirTemp("", "shipped") // short: the API socket path lives in it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &sandbox{t: t, root: dir, logs: map[string]*bytes.Buffer{}}
	bin := s.path("/usr/bin/petrel")
	os.MkdirAll(filepath.Dir(bin), 0o755)
	testkit.GoBuild(t, "github.com/petrel-os/petrel/cmd/petrel", bin)
	for _, name := range Names() {
		if err := os.Symlink("petrel", s.path("/usr/bin/"+name)); err != nil {
			t.Fatal(err)
		}
	}
	s.copyGlob("../settings/defaults/*.toml", "/usr/share/petrel/defaults.d")
	s.copyGlob("../render/templates/*", "/usr/share/templates")
	for _, f := range []string{"passwd", "group", "nsswitch.conf"} {
		s.copyGlob("../../packages/filesystem/"+f, "/etc")
	}
	s.write("/usr/lib/os-release", "NAME=Petrel\nID=petrel\nVERSION_ID=0.1.0\nPRETTY_NAME=\"Petrel 0.1.0 (metal-dev)\"\nVARIANT_ID=metal-dev\nBUILD_ID=shipped\n")
	// securityfs's lockdown control, as the kernel shows it before
	// anything raised it.
	s.write("/sys/kernel/security/lockdown", "[none] integrity confidentiality\n")
	for _, d := range []string{"/var/lib/petrel", "/run", "/tmp", "/proc", "/dev"} {
		os.MkdirAll(s.path(d), 0o755)
	}
	return s
}

func (s *sandbox) path(p string) string { return filepath.Join(s.root, p) }

func (s *sandbox) write(p, data string) {
	s.t.Helper()
	if err := os.MkdirAll(filepath.Dir(s.path(p)), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(s.path(p), []byte(data), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sandbox) read(p string) string {
	data, err := os.ReadFile(s.path(p))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(data)
}

func (s *sandbox) copyGlob(pattern, dir string) {
	s.t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		s.t.Fatalf("copy %s: no files (%v)", pattern, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			s.t.Fatal(err)
		}
		s.write(filepath.Join(dir, filepath.Base(f)), string(data))
	}
}

// command returns the command running argv in the sandbox as systemd runs
// a unit's command: a clean environment with systemd's PATH, in /. opts
// are further bubblewrap options. Output goes to the unit's log.
func (s *sandbox) command(ctx context.Context, u string, argv []string, opts ...string) *exec.Cmd {
	args := []string{"--bind", s.root, "/", "--proc", "/proc", "--dev", "/dev",
		"--unshare-uts", "--unshare-ipc", "--unshare-net", "--die-with-parent", "--chdir", "/",
		"--clearenv", "--setenv", "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"}
	args = append(append(append(args, opts...), "--"), argv...)
	cmd := exec.CommandContext(ctx, "bwrap", args...)
	s.mu.Lock()
	if s.logs[u] == nil {
		s.logs[u] = &bytes.Buffer{}
	}
	w := lockedWriter{mu: &s.mu, w: s.logs[u]}
	s.mu.Unlock()
	cmd.Stdout, cmd.Stderr = w, w
	return cmd
}

// log returns what the agents of unit u printed.
func (s *sandbox) log(u string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.logs[u]; b != nil {
		return b.String()
	}
	return ""
}

// waitLog waits until unit's output holds want: the applier's output
// reaches the API server's stderr pipe, and through it the test's buffer,
// a moment after the API has answered.
func (s *sandbox) waitLog(u, want string, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(10 * time.Millisecond) {
		if strings.Contains(s.log(u), want) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// conditionsMet evaluates ConditionPathExists= and
// ConditionPathIsSymbolicLink= in the root, as systemd does.
func (s *sandbox) conditionsMet(u unit) bool {
	for _, c := range u.conditions {
		c, link := strings.CutPrefix(c, "link:")
		p, negate := strings.CutPrefix(c, "!")
		var met bool
		if link {
			st, err := os.Lstat(s.path(p))
			met = err == nil && st.Mode()&os.ModeSymlink != 0
		} else {
			_, err := os.Stat(s.path(p))
			met = err == nil
		}
		if met == negate {
			return false
		}
	}
	return true
}

// startNotify starts a Type=notify unit and waits for its READY=1.
func (s *sandbox) startNotify(ctx context.Context, u unit) (childPID int, stop func()) {
	t := s.t
	notify := s.path("/run/systemd/notify")
	os.MkdirAll(filepath.Dir(notify), 0o755)
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	info, infoW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer info.Close()
	cmd := s.command(ctx, u.name, u.start, "--setenv", "NOTIFY_SOCKET", "/run/systemd/notify", "--info-fd", "3")
	cmd.ExtraFiles = []*os.File{infoW} // fd 3
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: start: %v", u.name, err)
	}
	infoW.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var pi struct {
		ChildPID int `json:"child-pid"`
	}
	if err := json.NewDecoder(info).Decode(&pi); err != nil {
		t.Fatalf("%s: read bwrap's child pid: %v\n%s", u.name, err, s.log(u.name))
	}
	ready := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := nc.Read(buf)
			if err != nil {
				return
			}
			if msg := string(buf[:n]); strings.Contains(msg, "READY=1") {
				ready <- msg
				return
			}
		}
	}()
	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("%s: %v exited before READY=1: %v\n%s", u.name, u.start, err, s.log(u.name))
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s: no READY=1 within 2 minutes\n%s", u.name, s.log(u.name))
	}
	return pi.ChildPID, func() {
		unix.Kill(pi.ChildPID, unix.SIGTERM)
		if err := <-exited; err != nil {
			t.Errorf("%s: stopped with %v\n%s", u.name, err, s.log(u.name))
		}
	}
}

// runOneshot runs the ExecStartPre and ExecStart lines of a oneshot unit
// and returns the exit status of the first that fails, else 0.
func (s *sandbox) runOneshot(ctx context.Context, u unit) int {
	for _, argv := range append(slices.Clone(u.pre), u.start) {
		cmd := s.command(ctx, u.name, argv)
		if err := cmd.Run(); err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode()
			}
			s.t.Fatalf("%s: run %v: %v", u.name, argv, err)
		}
	}
	return 0
}

// utsHostname reads the host name of the UTS namespace of process pid.
func utsHostname(pid int) (string, error) {
	type result struct {
		name string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread joins pid's namespace and is never unlocked, so it
		// ends with this goroutine and no other code runs in it.
		runtime.LockOSThread()
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/uts", pid))
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWUTS); err != nil {
			ch <- result{err: fmt.Errorf("join UTS namespace of %d: %w", pid, err)}
			return
		}
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			ch <- result{err: err}
			return
		}
		ch <- result{name: unix.ByteSliceToString(u.Nodename[:])}
	}()
	r := <-ch
	return r.name, r.err
}

// apiclient runs the apiclient command line against the sandbox's API.
func (s *sandbox) apiclient(args ...string) (int, string) {
	var out bytes.Buffer
	code := apiclient.Run(context.Background(), append([]string{"--socket-path", s.path("/run/api.sock")}, args...),
		strings.NewReader(""), &out, &out)
	return code, out.String()
}

// TestShippedUnits boots the shipped units' agents in a temporary root,
// each with exactly its unit's ExecStartPre= and ExecStart= command lines
// and in the units' order, then drives the running API server with
// apiclient as a user would: a value the settings model refuses is a 400
// naming every bad field, and a good value takes effect at once (the file
// is rendered, the host name of the API server's namespace is set).
func TestShippedUnits(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatalf("this test must run as root: bubblewrap makes the agents' namespaces (it runs as root in CI)")
	}
	units := readUnits(t)
	s := newSandbox(t)
	s.write("/var/lib/petrel/user-data.toml", "[settings]\nmotd = \"hello from user data\"\n[settings.network]\nhostname = \"petrel-test\"\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	apiPID := 0
	// A first boot has no datastore: systemd skips the migrator, as here.
	wantSkipped, skipped := []string{"migrator.service"}, []string(nil)
	for _, name := range bootOrder() {
		u := units[name]
		if !s.conditionsMet(u) {
			skipped = append(skipped, name)
			continue
		}
		switch {
		case u.typ == "notify":
			if len(u.pre) > 0 {
				t.Fatalf("%s: ExecStartPre= on a notify unit is not handled by this test", name)
			}
			pid, stop := s.startNotify(ctx, u)
			defer stop()
			if name == "apiserver.service" {
				apiPID = pid
			}
		case u.typ == "oneshot":
			code := s.runOneshot(ctx, u)
			want, needsDisk := noBootDisk()[name]
			switch {
			case needsDisk && (code != 1 || !strings.Contains(s.log(name), want)):
				t.Errorf("%s: %v exit %d; want 1 and output naming %q (it has no boot disk here):\n%s", name, u.start, code, want, s.log(name))
			case !needsDisk && code != 0:
				t.Fatalf("%s: exit %d:\n%s", name, code, s.log(name))
			}
		default:
			t.Fatalf("%s: Type=%s is not handled by this test", name, u.typ)
		}
	}
	if apiPID == 0 {
		t.Fatal("apiserver.service was not started")
	}
	if !slices.Equal(skipped, wantSkipped) {
		t.Errorf("units skipped by their conditions on a first boot = %v, want %v", skipped, wantSkipped)
	}
	// On the next boot the datastore exists and the migrator runs: at the
	// OS version already, it changes nothing.
	if m := units["migrator.service"]; !s.conditionsMet(m) {
		t.Errorf("migrator.service would be skipped with a datastore (conditions %v)", m.conditions)
	} else if code := s.runOneshot(ctx, m); code != 0 {
		t.Errorf("migrator.service with a datastore of the OS version: exit %d:\n%s", code, s.log("migrator.service"))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range bootOrder() {
				t.Logf("output of %s:\n%s", name, s.log(name))
			}
		}
	})

	// pluto found no EC2 instance (the root has no DMI vendor) and left
	// IMDS alone; the end-to-end test TestKubernetesAWS runs it on one.
	if log := s.log("pluto.service"); !strings.Contains(log, "not an EC2 instance") {
		t.Errorf("pluto.service did not report the missing EC2 instance:\n%s", log)
	}

	// settings-applier ran the host containers' restart command, which
	// found no systemd to start the control container with.
	if log := s.log("settings-applier.service"); !strings.Contains(log, "not booted with systemd; host containers are not started") {
		t.Errorf("settings-applier did not run host-ctr configure:\n%s", log)
	}

	// The boot rendered user data's settings and raised the lockdown to
	// the default level.
	for file, want := range map[string]string{"/etc/motd": "hello from user data\n", "/etc/hostname": "petrel-test\n",
		"/sys/kernel/security/lockdown": "integrity"} {
		if got := s.read(file); got != want {
			t.Errorf("after boot %s = %q, want %q", file, got, want)
		}
	}

	// Values the model refuses: 400, naming every bad field; nothing stored.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"set", "motd=5"}, []string{"status 400", "settings.motd: expected a string, got number"}},
		{[]string{"set", "network.hostname=a b;rm -rf"}, []string{"status 400", `settings.network.hostname: expected an RFC 1123 host name, got "a b;rm -rf"`}},
		{[]string{"set", "--json", `{"motd":"two\nlines","network":{"hostname":"-x"}}`}, []string{"status 400",
			"settings.motd: expected text without control characters, got a line break (U+000A) at byte 3",
			`settings.network.hostname: expected an RFC 1123 host name, got "-x"`}},
	} {
		code, out := s.apiclient(tc.args...)
		for _, w := range tc.want {
			if code != 1 || !strings.Contains(out, w) {
				t.Errorf("apiclient %q = exit %d %q; want exit 1 and %q", tc.args, code, out, w)
			}
		}
	}
	if got := s.read("/etc/motd"); got != "hello from user data\n" {
		t.Errorf("/etc/motd after refused values = %q", got)
	}

	// Good values take effect without a reboot.
	if code, out := s.apiclient("set", "motd=changed live", "network.hostname=live-host"); code != 0 {
		t.Fatalf("apiclient set = exit %d: %s", code, out)
	}
	for file, want := range map[string]string{"/etc/motd": "changed live\n", "/etc/hostname": "live-host\n"} {
		if got := s.read(file); got != want {
			t.Errorf("after apiclient set: %s = %q, want %q", file, got, want)
		}
	}
	if name, err := utsHostname(apiPID); err != nil || name != "live-host" {
		t.Errorf("host name of the API server's namespace = %q, %v; want live-host", name, err)
	}
	if !s.waitLog("apiserver.service", "petrel: hostname live-host\n", 10*time.Second) {
		t.Errorf("apiserver's output lacks the applier's line %q", "petrel: hostname live-host")
	}
	// A lockdown level is raised at once; the fake control is reset to
	// what the kernel would show first.
	s.write("/sys/kernel/security/lockdown", "none [integrity] confidentiality\n")
	if code, out := s.apiclient("set", "kernel.lockdown=confidentiality"); code != 0 {
		t.Fatalf("apiclient set kernel.lockdown = exit %d: %s", code, out)
	}
	if got := s.read("/sys/kernel/security/lockdown"); got != "confidentiality" {
		t.Errorf("after apiclient set kernel.lockdown=confidentiality: lockdown control = %q", got)
	}
	// What a user reads back.
	code, out := s.apiclient("get", "settings.motd")
	if code != 0 || !strings.Contains(out, `"motd": "changed live"`) {
		t.Errorf("apiclient get settings.motd = exit %d %q", code, out)
	}
	// The update routes run the shipped updater agent: here, with no
	// disk and no trusted root, the refresh fails with the updater's own
	// message.
	code, out = s.apiclient("update", "check")
	if want := "update refresh failed (updater exit status 1): updater: "; code != 1 || !strings.Contains(out, want) {
		t.Errorf("apiclient update check = exit %d %q; want exit 1 and %q", code, out, want)
	}
	sc := bufio.NewScanner(strings.NewReader(s.log("apiserver.service")))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "no applier configured") {
			t.Errorf("apiserver log: %s", sc.Text())
		}
	}
}
