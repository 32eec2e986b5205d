package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/sources/testkit/registrytest"
	"github.com/petrel-os/petrel/tools/qemu"
)

// The releases of the update test: N is the project as it is, N+1 and
// N+2 are copies of it with a higher release-version.
const (
	releaseN     = "0.1.0"
	releaseNext  = "0.2.0"
	releaseBroke = "0.3.0"
)

// repoGuest is where the guest reaches the test's repository server (a
// guest forward to 127.0.0.1).
const repoGuest = "10.0.2.100:80"

// The settings migration that release N+1 brings, to cross one on the way
// up and back down (issue 12). The settings model is Go code
// (sources/settings), so a release that changes it is a release whose
// model.go changed: N+1's copy of the project renames
// settings.ntp.time-servers to settings.ntp.servers and adds
// settings.ntp.step-on-boot with the default true, and ships the
// migration that carries hosts over: a move (backward: moved back) and an
// add-settings (forward: nothing, the new defaults fill the value at
// boot; backward: removed). Twoliter.toml lists it under the step
// (0.1.0, 0.2.0). N+1's own buildctl (built from its copy) checks it
// against N+1's model, as a release's build tool would; this test's
// buildctl knows only N's model.
const (
	oldNTP       = `"time-servers": list{elem: str{valid: timeServerProblem}},`
	newNTP       = `"servers": list{elem: str{valid: timeServerProblem}}, "step-on-boot": boolS,`
	ntpMigration = `description = "ntp.time-servers becomes ntp.servers; ntp.step-on-boot is new (default true)"

[[operation]]
kind = "move"
from = "settings.ntp.time-servers"
to = "settings.ntp.servers"

[[operation]]
kind = "add-settings"
keys = ["settings.ntp.step-on-boot"]
`
	ntpDefaults = "\n[settings.ntp]\nstep-on-boot = true\n"
	ntpServers  = `["ntp.petrel.test","10.0.2.123"]`
)

// brokenParam is the kernel parameter that makes N+2's bank unbootable.
const brokenParam = "petrel.mount=broken"

// copyProject copies the project's source tree (the files git tracks or
// would track, not build/) to a new directory, applies edit to named
// files (path → function of the current content) and commits the copy to
// a git repository of its own, so that its build has a commit for its
// build ID and SOURCE_DATE_EPOCH.
func copyProject(t *testing.T, edit map[string]func(string) string) string {
	t.Helper()
	src := projectRoot(t)
	out := testkit.Git(t, src, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	files := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(out, "\x00"), "\x00") {
		data, err := os.ReadFile(filepath.Join(src, name))
		if os.IsNotExist(err) {
			continue // deleted in the work tree
		}
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(data)
	}
	for name, f := range edit {
		cur, ok := files[name]
		if !ok && !strings.HasPrefix(name, "sources/migration/migrations/") {
			t.Fatalf("copy of the project: no file %s to edit", name)
		}
		files[name] = f(cur)
	}
	dst := t.TempDir()
	testkit.WriteFiles(t, dst, files)
	// Keep executable bits (scripts of packages).
	for name := range files {
		if st, err := os.Stat(filepath.Join(src, name)); err == nil && st.Mode()&0o111 != 0 {
			os.Chmod(filepath.Join(dst, name), st.Mode().Perm())
		}
	}
	testkit.Git(t, dst, "init", "-q")
	testkit.Git(t, dst, "add", "-A")
	testkit.Git(t, dst, "commit", "-q", "-m", "release fixture")
	return dst
}

// replaceOnce returns an edit that replaces old, which must occur once.
func replaceOnce(t *testing.T, file, old, new string) func(string) string {
	return func(s string) string {
		if strings.Count(s, old) != 1 {
			t.Fatalf("%s: want exactly one %q to replace", file, old)
		}
		return strings.Replace(s, old, new, 1)
	}
}

// updateRepo is the test's TUF repository and the builds published in
// it, all under one build directory of the test's own.
type updateRepo struct {
	buildDir string // BUILDSYS_BUILD_DIR of N+1 and N+2, holding N's build too and repos/
	keys     string // the signing keys (the images' trusted root)
	nextBin  string // N+1's buildctl, which knows N+1's settings model
	broken   string // N+2's project copy
	dir      string // the repository: buildDir/repos
}

// buildctlIn runs a buildctl binary in project root (of release) with the
// test's build directory and keys, and logs what it built.
func (r *updateRepo) buildctlIn(t *testing.T, release, bin, root string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-C", root, "--variant", variant}, args...)...)
	cmd.Env = append(os.Environ(), "BUILDSYS_BUILD_DIR="+r.buildDir, "PUBLISH_KEYS_DIR="+r.keys)
	start := time.Now()
	out := testkit.RunCmd(t, cmd)
	var summary []string
	for _, l := range strings.Split(out, "\n") {
		if regexp.MustCompile(`\] built |packages? cached|^made |^published `).MatchString(l) {
			summary = append(summary, strings.TrimSpace(l))
		}
	}
	t.Logf("buildctl %s of %s took %.1fs: %s", strings.Join(args, " "), release, time.Since(start).Seconds(), strings.Join(summary, "; "))
}

// prepareReleases builds N+1 and N+2 and publishes N and N+1 (N+2 is
// published by the test when it needs it). N is the shared build of the
// project (builtImage); its image directory is linked into the test's
// build directory so that `buildctl repo` of N publishes exactly it into
// the same repository. N+1 and N+2 build there from their copies, with
// the download cache and the Go build cache of the project's build linked
// in (both are content-addressed), so only what changed is built.
func prepareReleases(t *testing.T) *updateRepo {
	t.Helper()
	root := projectRoot(t)
	nImage, _ := builtImage(t)
	r := &updateRepo{buildDir: t.TempDir(), keys: updateKeys(t)}
	r.dir = filepath.Join(r.buildDir, "repos")
	for _, c := range []string{"lookaside", "go-build"} {
		if _, err := os.Stat(filepath.Join(root, "build", "cache", c)); err == nil {
			testkit.RunCmd(t, exec.Command("mkdir", "-p", filepath.Join(r.buildDir, "cache")))
			testkit.RunCmd(t, exec.Command("cp", "-al", filepath.Join(root, "build", "cache", c), filepath.Join(r.buildDir, "cache", c)))
		}
	}
	images := filepath.Join(r.buildDir, "images", "x86_64-"+variant)
	nDir := filepath.Dir(nImage)
	testkit.RunCmd(t, exec.Command("mkdir", "-p", images))
	testkit.RunCmd(t, exec.Command("cp", "-al", nDir, filepath.Join(images, filepath.Base(nDir))))
	if err := os.Symlink(filepath.Base(nDir), filepath.Join(images, "latest")); err != nil {
		t.Fatal(err)
	}
	nBin := testkit.GoBuild(t, "github.com/petrel-os/petrel/cmd/buildctl", filepath.Join(t.TempDir(), "buildctl"))
	r.buildctlIn(t, releaseN, nBin, root, "repo")

	// edits makes a copy of the project into a release after N: its
	// version, N+1's settings model and migration, the steps listed.
	edits := func(version, steps string, more map[string]func(string) string) map[string]func(string) string {
		e := map[string]func(string) string{
			"Twoliter.toml": func(s string) string {
				return replaceOnce(t, "Twoliter.toml", `release-version = "`+releaseN+`"`, `release-version = "`+version+`"`)(s) +
					"\n[migrations]\n" + steps
			},
			"sources/settings/model.go":                            replaceOnce(t, "model.go", oldNTP, newNTP),
			"sources/settings/defaults/10-defaults.toml":           func(s string) string { return s + ntpDefaults },
			"sources/migration/migrations/v0.2.0/ntp-servers.toml": func(string) string { return ntpMigration },
		}
		maps.Copy(e, more)
		return e
	}
	next := copyProject(t, edits(releaseNext, `"(0.1.0, 0.2.0)" = ["ntp-servers"]`+"\n", nil))
	r.nextBin = filepath.Join(t.TempDir(), "buildctl")
	build := exec.Command("go", "build", "-o", r.nextBin, "./cmd/buildctl")
	build.Dir = next
	testkit.RunCmd(t, build)
	r.buildctlIn(t, releaseNext, r.nextBin, next, "make")
	r.buildctlIn(t, releaseNext, r.nextBin, next, "repo")

	// N+2 cannot boot: its variant adds a malformed petrel.mount= to the
	// kernel command line, which the build passes on as it is and the
	// initramfs refuses, then reboots (docs/initramfs.md). Every image is
	// whole and correctly signed, so the updater writes and verifies the
	// bank; only booting it fails. N+1's buildctl builds it: the settings
	// model is N+1's.
	r.broken = copyProject(t, edits(releaseBroke, `"(0.1.0, 0.2.0)" = ["ntp-servers"]`+"\n"+`"(0.2.0, 0.3.0)" = []`+"\n",
		map[string]func(string) string{
			"variants/metal-dev/variant.toml": replaceOnce(t, "variant.toml", `"net.ifnames=0"]`, `"net.ifnames=0", "`+brokenParam+`"]`),
		}))
	r.buildctlIn(t, releaseBroke, r.nextBin, r.broken, "make")
	return r
}

// updateKeys returns the signing keys of the test's repository: the
// project's development keys, whose root the images ship as their trust
// anchor.
func updateKeys(t *testing.T) string {
	t.Helper()
	return filepath.Join(projectRoot(t), ".keys")
}

// serveRepo serves the repository over HTTP on 127.0.0.1 and returns its
// address and a counter of the bytes served.
func serveRepo(t *testing.T, dir string) (string, *atomic.Int64) {
	t.Helper()
	var served atomic.Int64
	files := http.FileServer(http.Dir(dir))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w, n: &served}
		files.ServeHTTP(cw, r)
		t.Logf("repository: %s %s %d (%d bytes)", r.Method, r.URL.Path, cw.code, cw.bytes)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), &served
}

type countingWriter struct {
	http.ResponseWriter
	n     *atomic.Int64
	code  int
	bytes int64
}

func (c *countingWriter) WriteHeader(code int) { c.code = code; c.ResponseWriter.WriteHeader(code) }

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(p)
	c.bytes += int64(n)
	c.n.Add(int64(n))
	return n, err
}

// diskBootState reads the boot state of a disk image, also while a VM
// runs on it (the guest fsyncs each change, and QEMU writes it through).
func diskBootState(t *testing.T, img string) bootstate.State {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, _, err := bootstate.Read(t.Context(), f, bootStateOffset(t, f))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// bootStateOffset returns the byte offset of the boot-state sector of the
// disk image f.
func bootStateOffset(t *testing.T, f *os.File) int64 {
	t.Helper()
	table, err := gpt.ReadOpen(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	esp, ok := table.ByName("EFI-SYSTEM")
	if !ok {
		t.Fatal("no EFI-SYSTEM partition")
	}
	espOff, _ := table.Bytes(esp)
	off, err := bootstate.LocateEnv(t.Context(), f, espOff)
	if err != nil {
		t.Fatal(err)
	}
	return off
}

// updateHost is the VM of the update test and how to talk to it.
type updateHost struct {
	t    *testing.T
	vm   *qemu.VM
	sock string
	img  string
}

// check runs `apiclient update check` and returns the status document it
// prints.
func (h *updateHost) check() api.UpdateStatus {
	h.t.Helper()
	out := apiclientOK(h.t, h.sock, "update", "check")
	var st api.UpdateStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		h.t.Fatalf("apiclient update check printed %q: %v", out, err)
	}
	return st
}

// applyAndReboot runs `apiclient update apply --reboot` and waits for the
// next host ready (allowing failedBoots failed boots on the way); it
// returns the ready line, the console index the apply started at, and the
// time from the apply to host ready.
func (h *updateHost) applyAndReboot(failedBoots int) (qemu.Line, int, time.Duration) {
	h.t.Helper()
	from := h.vm.Len()
	start := time.Now()
	out, errb, code := runAPIClient(h.t, h.sock, "update", "apply", "--reboot")
	h.t.Logf("apiclient update apply --reboot exited %d after %.1fs (the update written and activated): %s%s", code, time.Since(start).Seconds(), out, errb)
	if code != 0 {
		h.t.Fatalf("apiclient update apply --reboot failed:\n%s", errb)
	}
	line, _, err := h.vm.WaitReady(h.t.Context(), from, bootTimeout, qemu.Policy{FailedBoots: failedBoots})
	if err != nil {
		h.t.Fatalf("boot after apiclient update apply --reboot: %v", err)
	}
	took := time.Since(start)
	h.t.Logf("host ready %.1fs after apiclient update apply --reboot: %s", took.Seconds(), line.Text)
	return line, from, took
}

// updateTo applies the chosen update with a reboot and checks that the
// host came back on bank reporting version, the bank marked successful
// and first; it returns the time from the apply to host ready.
func (h *updateHost) updateTo(version string, bank bootstate.Bank) time.Duration {
	h.t.Helper()
	line, _, took := h.applyAndReboot(0)
	if !strings.HasSuffix(line.Text, "bank "+bank.String()) || h.osVersion() != version {
		h.t.Fatalf("after the update to %s: ready line %q, /os version %s; want bank %s", version, line.Text, h.osVersion(), bank)
	}
	if s := diskBootState(h.t, h.img).Bank(bank); !s.Successful || s.Priority != 2 {
		h.t.Errorf("bank %s after the update to %s = %+v, want it marked successful and first", bank, version, s)
	}
	return took
}

// status returns GET /updates/status.
func (h *updateHost) status() api.UpdateStatus {
	h.t.Helper()
	out := apiclientOK(h.t, h.sock, "raw", "-u", "/updates/status")
	var st api.UpdateStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		h.t.Fatalf("GET /updates/status answered %q: %v", out, err)
	}
	return st
}

// updateWritten is the updater's summary of a written bank, with its
// figures (sources/updater, updateImage).
var updateWritten = regexp.MustCompile(`msg="update written" .*seconds=([0-9.]+) device_seconds=([0-9.]+) peak_rss_kib=([0-9]+)`)

// prepareRaw refreshes and prepares the chosen update through the API's
// routes (POST /actions/refresh-updates and /actions/prepare-update, then
// GET /updates/status until the prepare has ended), checks that it
// succeeded, and returns the updater's figures from the status
// document's most_recent_command.
func (h *updateHost) prepareRaw() string {
	h.t.Helper()
	apiclientOK(h.t, h.sock, "raw", "-m", "POST", "-u", "/actions/refresh-updates")
	if st := h.settled(); st.MostRecentCommand == nil || st.MostRecentCommand.CmdStatus != api.CommandSuccess {
		h.t.Fatalf("refresh-updates ended %+v", st.MostRecentCommand)
	}
	apiclientOK(h.t, h.sock, "raw", "-m", "POST", "-u", "/actions/prepare-update")
	st := h.settled()
	c := st.MostRecentCommand
	if c == nil || c.CmdType != api.UpdatePrepare || c.CmdStatus != api.CommandSuccess || st.UpdateState != api.UpdateStaged {
		h.t.Fatalf("prepare-update ended %+v, state %s; want Success and Staged", c, st.UpdateState)
	}
	m := updateWritten.FindStringSubmatch(c.Stderr)
	if m == nil {
		h.t.Fatalf("the updater's output in most_recent_command has no %q line:\n%s", updateWritten, c.Stderr)
	}
	total, _ := strconv.ParseFloat(m[1], 64)
	device, _ := strconv.ParseFloat(m[2], 64)
	rss, _ := strconv.ParseInt(m[3], 10, 64)
	return fmt.Sprintf("update-image %.1fs, of which the device's writes and sync (a plain copy's share) %.1fs; peak RSS %.1f MiB", total, device, float64(rss)/1024)
}

// settled polls GET /updates/status until no update command runs (for
// at most 10 minutes, the API's limit for a prepare) and returns it.
func (h *updateHost) settled() api.UpdateStatus {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		st := h.status()
		if st.RunningCommand == nil {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("an update command still runs after 10 minutes: %+v", st)
		}
		time.Sleep(time.Second)
	}
}

// osVersion is the version_id the API's /os reports.
func (h *updateHost) osVersion() string {
	h.t.Helper()
	osInfo, _ := getJSON(h.t, h.sock, "os")["os"].(map[string]any)
	v, _ := osInfo["version_id"].(string)
	return v
}

// ntp is the host's settings.ntp, as JSON.
func (h *updateHost) ntp() string {
	h.t.Helper()
	s, _ := getJSON(h.t, h.sock, "settings.ntp")["settings"].(map[string]any)
	data, _ := json.Marshal(s["ntp"])
	return string(data)
}

// TestUpdateAB updates a host through its API, as an operator would, with
// the normal apiclient over the API bridge, from a signed repository that
// the test serves over HTTP (the guest reaches it through a guest
// forward): release N boots from a persistent disk on bank A; `apiclient
// update check` lists N+1; `apiclient update apply --reboot` writes it to
// bank B and the host comes back on B reporting N+1, marked successful,
// with its settings carried over by N+1's migration (a renamed setting
// keeps its value, a new one has its default); version-lock = N downgrades
// it the same way back to bank A, where the old name and value are back
// and the new setting is gone. Bank B still holds N+1, which booted:
// `partflip rollback-to-inactive`, run on the host through sheltie in the
// superpowered admin container (upstream's signpost, run the same way),
// and a reboot bring the host back to B on N+1, whose migrator carries
// the settings forward again from the migrations the updater saved. Then
// release N+2, whose bank cannot boot, is published: the host writes it
// into bank A, reboots, the initramfs refuses it, and the host comes back
// on bank B by itself, still N+1; a second rollback is refused, naming
// bank A's state, and changes nothing.
func TestUpdateAB(t *testing.T) {
	testkit.IsolateGit(t)
	repo := prepareReleases(t)
	addr, served := serveRepo(t, repo.dir)
	base := "http://" + strings.TrimSuffix(repoGuest, ":80") + "/" + variant + "/x86_64"
	registry := registrytest.Start(t, "", "")
	buildctlOK(t, "container-image", "--name", "admin", "--push", registry+"/petrel/admin:e2e")

	nImage, _ := builtImage(t)
	img := copyDisk(t, nImage, "update.img")
	vm, line, sock := bootWithAPI(t, qemu.Options{Image: img, Firmware: qemu.UEFI,
		GuestForwards: []qemu.GuestForward{{Guest: repoGuest, Host: addr}, {Guest: guestRegistry, Host: registry}}})
	h := &updateHost{t: t, vm: vm, sock: sock, img: img}
	if !strings.HasSuffix(line.Text, "bank A") || h.osVersion() != releaseN {
		t.Fatalf("first boot: ready line %q, /os version %s; want bank A, %s", line.Text, h.osVersion(), releaseN)
	}
	apiclientOK(t, sock, "set", "--json", fmt.Sprintf(`{"updates":{"metadata-base-url":%q,"targets-base-url":%q,"ignore-waves":true},"ntp":{"time-servers":%s}}`,
		base+"/metadata", base+"/targets", ntpServers))

	// N → N+1: bank B, the migration forward.
	st := h.check()
	if st.UpdateState != api.UpdateAvailable || st.ChosenUpdate == nil || st.ChosenUpdate.Version != releaseNext || !slices.Contains(st.AvailableUpdates, releaseNext) {
		t.Fatalf("apiclient update check on %s: %+v, want Available with %s chosen", releaseN, st, releaseNext)
	}
	upTook := h.updateTo(releaseNext, bootstate.BankB)
	if got, want := h.ntp(), `{"servers":`+ntpServers+`,"step-on-boot":true}`; got != want {
		t.Errorf("settings.ntp on %s = %s, want %s (renamed with its value, the new setting at its default)", releaseNext, got, want)
	}
	if st := h.check(); st.UpdateState != api.UpdateIdle || st.ChosenUpdate != nil {
		t.Errorf("apiclient update check on %s: %+v, want Idle, nothing chosen", releaseNext, st)
	}

	// N+1 → N through the version lock: bank A, the migration backward.
	apiclientOK(t, sock, "set", "updates.version-lock="+releaseN)
	if st := h.check(); st.ChosenUpdate == nil || st.ChosenUpdate.Version != releaseN {
		t.Fatalf("apiclient update check with version-lock %s: %+v, want %s chosen", releaseN, st, releaseN)
	}
	downTook := h.updateTo(releaseN, bootstate.BankA)
	if got, want := h.ntp(), `{"time-servers":`+ntpServers+`}`; got != want {
		t.Errorf("settings.ntp back on %s = %s, want %s (the old name and value, the added setting gone)", releaseN, got, want)
	}

	// Back to N+1 on bank B, which booted before, by hand.
	apiclientOK(t, sock, "set", "--json", fmt.Sprintf(`{"container-registry":{"insecure-registries":[%q]},`+
		`"host-containers":{"admin":{"enabled":true,"superpowered":true,"source":"%s/petrel/admin:e2e"}}}`, guestRegistry, guestRegistry))
	waitStatus(t, sock, "admin", api.ContainerRunning, "")
	before := diskBootState(t, img)
	if !before.B.Successful {
		t.Fatalf("boot state before the rollback = %+v, want bank B (%s) marked successful", before, releaseNext)
	}
	t.Logf("partflip rollback-to-inactive: %s", strings.TrimSpace(apiclientOK(t, sock, "exec", "admin", "--", "sheltie", "partflip", "rollback-to-inactive")))
	if s := diskBootState(t, img); s.B.Priority != 2 || s.A.Priority != 1 || bootstate.Next(s).Bank != bootstate.BankB {
		t.Fatalf("boot state after partflip rollback-to-inactive = %+v (before %+v), want bank B first", s, before)
	}
	from := vm.Len()
	apiclientOK(t, sock, "reboot")
	line, _, err := vm.WaitReady(t.Context(), from, bootTimeout, qemu.Policy{})
	if err != nil {
		t.Fatalf("boot after partflip rollback-to-inactive: %v", err)
	}
	if !strings.HasSuffix(line.Text, "bank B") || h.osVersion() != releaseNext {
		t.Fatalf("after the rollback: ready line %q, /os version %s; want bank B, %s", line.Text, h.osVersion(), releaseNext)
	}
	t.Logf("after the rollback: %s", line.Text)
	if got, want := h.ntp(), `{"servers":`+ntpServers+`,"step-on-boot":true}`; got != want {
		t.Errorf("settings.ntp after the rollback to %s = %s, want %s (migrated forward at boot)", releaseNext, got, want)
	}

	// N+2 cannot boot: the host falls back to bank B by itself.
	repo.buildctlIn(t, releaseBroke, repo.nextBin, repo.broken, "repo")
	apiclientOK(t, sock, "set", "updates.version-lock=latest")
	if st := h.check(); st.ChosenUpdate == nil || st.ChosenUpdate.Version != releaseBroke {
		t.Fatalf("apiclient update check after %s was published: %+v, want it chosen", releaseBroke, st)
	}
	// This time through the API's routes as upstream's clients use them
	// (prepare, poll the status, activate, reboot), which also leaves the
	// updater's own figures in the status document.
	figures := h.prepareRaw()
	from = vm.Len()
	apiclientOK(t, sock, "raw", "-m", "POST", "-u", "/actions/activate-update")
	if st := h.settled(); st.UpdateState != api.UpdateReady {
		t.Fatalf("status after activate-update: %+v, want Ready", st)
	}
	apiclientOK(t, sock, "reboot")
	line, _, err = vm.WaitReady(t.Context(), from, bootTimeout, qemu.Policy{FailedBoots: 1})
	if err != nil {
		t.Fatalf("boot after the update to %s: %v", releaseBroke, err)
	}
	if !strings.HasSuffix(line.Text, "bank B") || h.osVersion() != releaseNext {
		t.Errorf("after the update to %s that cannot boot: ready line %q, /os version %s; want bank B, %s", releaseBroke, line.Text, h.osVersion(), releaseNext)
	}
	lines := vm.Lines()
	refused := regexp.MustCompile(regexp.QuoteMeta(`petrel-init: fatal: invalid kernel command line: petrel.mount="broken": expected SOURCE:TARGET:FSTYPE`))
	iA := consoleIndex(lines, from, grubBootsA)
	iF := consoleIndex(lines, iA, refused)
	iB := consoleIndex(lines, iF, grubBootsB)
	if iA < 0 || iF < 0 || iB < 0 {
		t.Errorf("console after the apply: GRUB chose A at line %d, the initramfs refused it at %d, GRUB chose B at %d; want all three in this order", iA, iF, iB)
	}
	fellBack := diskBootState(t, img)
	if fellBack.A.Successful || fellBack.A.TriesLeft != 0 || !fellBack.B.Successful {
		t.Errorf("boot state after the failed bank = %+v, want A unmarked with its try spent, B successful", fellBack)
	}
	if got, want := h.ntp(), `{"servers":`+ntpServers+`,"step-on-boot":true}`; got != want {
		t.Errorf("settings.ntp after the fallback = %s, want %s", got, want)
	}
	// Bank A neither booted nor has a try left: no rollback to it. (The
	// exec protocol carries the command's standard output and error
	// together.)
	waitStatus(t, sock, "admin", api.ContainerRunning, "")
	out, _, code := runAPIClient(t, sock, "exec", "admin", "--", "sheltie", "partflip", "rollback-to-inactive")
	refusal := &bootstate.StateError{Op: "rollback-to-inactive", Bank: bootstate.BankA, State: fellBack.A, Err: bootstate.ErrNotBootable}
	if want := refusal.Error(); code != 1 || !strings.Contains(out, want) {
		t.Errorf("partflip rollback-to-inactive towards the failed bank: exit %d, output %q; want exit 1 with %q", code, out, want)
	} else {
		t.Logf("partflip rollback-to-inactive towards the failed bank: exit %d: %s", code, strings.TrimSpace(out))
	}
	if s := diskBootState(t, img); s != fellBack {
		t.Errorf("boot state after the refused rollback = %+v, want it unchanged (%+v)", s, fellBack)
	}
	t.Logf("from apiclient update apply --reboot to host ready on the new bank: update %.1fs, downgrade %.1fs; %d MB served by the repository",
		upTook.Seconds(), downTook.Seconds(), served.Load()>>20)
	t.Logf("the updater writing %s into bank A in the VM: %s", releaseBroke, figures)
}
