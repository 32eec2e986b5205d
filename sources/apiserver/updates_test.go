package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
)

// updateHarness is a server whose update routes run the fake updater.
type updateHarness struct {
	*harness
	state  string // the fake updater's state file
	status string // the status document
	cfg    UpdateConfig
}

// newDisk is a host booted from bank A with release 0.1.0, bank B empty,
// and a repository offering 0.2.0 and 0.1.1.
func newDisk() fakeDisk {
	return fakeDisk{Variant: "metal-dev", Arch: "x86_64", Active: "A", Next: "A",
		Versions: map[string]string{"A": "0.1.0", "B": ""}, Available: []string{"0.2.0", "0.1.1"}}
}

func startUpdates(t *testing.T, disk fakeDisk, edit func(*UpdateConfig)) *updateHarness {
	t.Helper()
	dir := t.TempDir()
	path, state := fakeUpdater(t, dir, disk)
	u := &updateHarness{state: state, status: filepath.Join(dir, "run", "update-status.json")}
	u.cfg = UpdateConfig{Updater: path, StatusPath: u.status, LockPath: filepath.Join(dir, "lock", "update.lock"), SocketPath: "/run/petrel-test.sock"}
	if edit != nil {
		edit(&u.cfg)
	}
	u.harness = startServerWith(t, 0o660, func(c *Config) { c.Updates = &u.cfg })
	return u
}

// get answers GET /updates/status: the code and the document.
func (u *updateHarness) get(t *testing.T) (int, api.UpdateStatus, string) {
	t.Helper()
	code, body, err := u.client.Raw(context.Background(), http.MethodGet, api.PathUpdateStatus, nil)
	if err != nil {
		t.Fatal(err)
	}
	var st api.UpdateStatus
	if code == http.StatusOK {
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
	}
	return code, st, string(body)
}

// restored waits until Serve has rebuilt the status document at start
// (the fake updater ran, and the lock the rebuild holds is free) and
// returns GET /updates/status.
func (u *updateHarness) restored(t *testing.T) (int, api.UpdateStatus, string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(readDisk(t, u.state).Calls) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not run the updater within 20 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		lock, err := newUpdates(u.cfg).lock(t.Context())
		if err == nil {
			lock.Close()
			break
		}
		if statusOf(err) != http.StatusLocked || time.Now().After(deadline) {
			t.Fatalf("wait for the update lock: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return u.get(t)
}

// restoredOK is restored, expecting a document.
func (u *updateHarness) restoredOK(t *testing.T) api.UpdateStatus {
	t.Helper()
	code, st, body := u.restored(t)
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d %s, want the restored status", api.PathUpdateStatus, code, body)
	}
	return st
}

// post starts cmd and returns the code and body of the answer.
func (u *updateHarness) post(t *testing.T, cmd api.UpdateCommand) (int, string) {
	t.Helper()
	code, body, err := u.client.Raw(context.Background(), http.MethodPost, cmd.Path(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return code, string(body)
}

// do starts cmd, expecting 204, and returns the document once it ended.
func (u *updateHarness) do(t *testing.T, cmd api.UpdateCommand) api.UpdateStatus {
	t.Helper()
	if code, body := u.post(t, cmd); code != http.StatusNoContent {
		t.Fatalf("POST %s = %d %q, want 204", cmd.Path(), code, body)
	}
	return u.ended(t, cmd)
}

// ended waits until no command runs and returns the document.
func (u *updateHarness) ended(t *testing.T, cmd api.UpdateCommand) api.UpdateStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, st, body := u.get(t)
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d %s while %s ran", api.PathUpdateStatus, code, body, cmd)
		}
		if st.RunningCommand == nil {
			if st.MostRecentCommand == nil || st.MostRecentCommand.CmdType != cmd {
				t.Fatalf("after %s: most recent command %+v", cmd, st.MostRecentCommand)
			}
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still running after 20 s", cmd)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// summary is the parts of a status document the tests compare.
func summary(st api.UpdateStatus) string {
	img := func(i *api.UpdateImage) string {
		if i == nil {
			return "-"
		}
		return i.Version
	}
	part := func(p *api.UpdatePartition) string {
		if p == nil {
			return "none"
		}
		s := p.Bank + ":" + img(p.Image)
		if p.NextToBoot {
			s += "(next)"
		}
		return s
	}
	s := fmt.Sprintf("%s available=%v chosen=%s active=%s staging=%s", st.UpdateState, st.AvailableUpdates,
		img(st.ChosenUpdate), part(st.ActivePartition), part(st.StagingPartition))
	if c := st.MostRecentCommand; c != nil {
		s += fmt.Sprintf(" last=%s:%s:%d", c.CmdType, c.CmdStatus, c.ExitStatus)
	}
	return s
}

// TestUpdateStateMachine drives the update routes through the whole
// state machine with a fake updater that keeps its banks in a file: each
// command is a 204 and its result appears in the status document; a
// command the state does not allow is a 409 and runs nothing.
func TestUpdateStateMachine(t *testing.T) {
	u := startUpdates(t, newDisk(), nil)
	steps := []struct {
		cmd  api.UpdateCommand
		code int
		want string // summary after the command, or the body of the refusal
	}{
		{api.UpdatePrepare, 409, "Update action not allowed according to update state: prepare is allowed in state Available or Staged, the state is Idle"},
		{api.UpdateActivate, 409, "Update action not allowed according to update state: activate is allowed in state Staged, the state is Idle"},
		{api.UpdateDeactivate, 409, "Update action not allowed according to update state: deactivate is allowed in state Ready, the state is Idle"},
		{api.UpdateRefresh, 204, "Available available=[0.2.0 0.1.1] chosen=0.2.0 active=A:0.1.0(next) staging=B:- last=refresh:Success:0"},
		{api.UpdateActivate, 409, "~the state is Available"},
		{api.UpdatePrepare, 204, "Staged available=[0.2.0 0.1.1] chosen=0.2.0 active=A:0.1.0(next) staging=B:0.2.0 last=prepare:Success:0"},
		{api.UpdateDeactivate, 409, "~the state is Staged"},
		{api.UpdatePrepare, 204, "Staged available=[0.2.0 0.1.1] chosen=0.2.0 active=A:0.1.0(next) staging=B:0.2.0 last=prepare:Success:0"},
		{api.UpdateActivate, 204, "Ready available=[0.2.0 0.1.1] chosen=0.2.0 active=A:0.1.0 staging=B:0.2.0(next) last=activate:Success:0"},
		{api.UpdatePrepare, 409, "~the state is Ready"},
		{api.UpdateRefresh, 204, "Ready available=[0.2.0 0.1.1] chosen=0.2.0 active=A:0.1.0 staging=B:0.2.0(next) last=refresh:Success:0"},
		{api.UpdateDeactivate, 204, "Staged available=[0.2.0 0.1.1] chosen=0.2.0 active=A:0.1.0(next) staging=B:0.2.0 last=deactivate:Success:0"},
		{api.UpdateActivate, 204, "Ready available=[0.2.0 0.1.1] chosen=0.2.0 active=A:0.1.0 staging=B:0.2.0(next) last=activate:Success:0"},
	}
	if got := summary(u.restoredOK(t)); got != "Idle available=[] chosen=- active=A:0.1.0(next) staging=B:-" {
		t.Errorf("restored status: %s", got)
	}
	var last time.Time
	for i, s := range steps {
		calls := len(readDisk(t, u.state).Calls)
		if s.code != http.StatusNoContent {
			code, body := u.post(t, s.cmd)
			ok := code == s.code && body == s.want
			if w, sub := strings.CutPrefix(s.want, "~"); sub {
				ok = code == s.code && strings.Contains(body, w)
			}
			if !ok {
				t.Errorf("step %d: POST %s = %d %q, want %d %q", i, s.cmd.Path(), code, body, s.code, s.want)
			}
			if n := len(readDisk(t, u.state).Calls); n != calls {
				t.Errorf("step %d: a refused %s ran the updater", i, s.cmd)
			}
			continue
		}
		st := u.do(t, s.cmd)
		if got := summary(st); got != s.want {
			t.Errorf("step %d: after %s:\n got %s\nwant %s", i, s.cmd, got, s.want)
		}
		if ts := st.MostRecentCommand.Timestamp; !ts.After(last) {
			t.Errorf("step %d: timestamp %v not after the previous %v", i, ts, last)
		}
		last = st.MostRecentCommand.Timestamp
	}
	var verbs []string
	for _, c := range readDisk(t, u.state).Calls {
		verbs = append(verbs, strings.Join(c, " "))
	}
	want := []string{"status --json", // restore
		"check-update --json", "status --json",
		"update-image --version 0.2.0 --json", "status --json",
		"update-image --version 0.2.0 --json", "status --json",
		"update-apply --json", "status --json",
		"check-update --json", "status --json",
		"update-revert --json", "status --json",
		"update-apply --json", "status --json"}
	if !slices.Equal(verbs, want) {
		t.Errorf("updater runs:\n%s\nwant\n%s", strings.Join(verbs, "\n"), strings.Join(want, "\n"))
	}
	if s := readDisk(t, u.state).Socket; s != u.cfg.SocketPath {
		t.Errorf("updater told --socket-path %q, want the server's %q", s, u.cfg.SocketPath)
	}
}

// TestUpdateAllowed checks every command in every state: 409 for a
// command the state does not allow (before anything else), 404 when
// there is nothing to prepare or no staged image.
func TestUpdateAllowed(t *testing.T) {
	t.Parallel()
	chosen := &api.UpdateImage{Version: "0.2.0"}
	staged := &api.UpdatePartition{Bank: "B", Image: &api.UpdateImage{Version: "0.2.0"}}
	empty := &api.UpdatePartition{Bank: "B"}
	for _, tt := range []struct {
		state   api.UpdateState
		chosen  *api.UpdateImage
		staging *api.UpdatePartition
		want    map[api.UpdateCommand]int // commands not listed: 409
	}{
		{api.UpdateIdle, nil, empty, map[api.UpdateCommand]int{api.UpdateRefresh: 0}},
		{api.UpdateAvailable, chosen, empty, map[api.UpdateCommand]int{api.UpdateRefresh: 0, api.UpdatePrepare: 0}},
		{api.UpdateAvailable, nil, empty, map[api.UpdateCommand]int{api.UpdateRefresh: 0, api.UpdatePrepare: 404}},
		{api.UpdateStaged, chosen, staged, map[api.UpdateCommand]int{api.UpdateRefresh: 0, api.UpdatePrepare: 0, api.UpdateActivate: 0}},
		{api.UpdateStaged, nil, nil, map[api.UpdateCommand]int{api.UpdateRefresh: 0, api.UpdatePrepare: 404, api.UpdateActivate: 404}},
		{api.UpdateReady, chosen, staged, map[api.UpdateCommand]int{api.UpdateRefresh: 0, api.UpdateDeactivate: 0}},
		{api.UpdateReady, chosen, empty, map[api.UpdateCommand]int{api.UpdateRefresh: 0, api.UpdateDeactivate: 404}},
	} {
		for _, cmd := range api.UpdateCommands() {
			t.Run(fmt.Sprintf("%s/chosen=%v/%s", tt.state, tt.chosen != nil, cmd), func(t *testing.T) {
				want, ok := tt.want[cmd]
				if !ok {
					want = http.StatusConflict
				}
				err := allowed(cmd, &api.UpdateStatus{UpdateState: tt.state, ChosenUpdate: tt.chosen, StagingPartition: tt.staging})
				got := 0
				if err != nil {
					got = statusOf(err)
				}
				if got != want {
					t.Errorf("allowed = %v (%d), want %d", err, got, want)
				}
				if want == 404 && err.Error() != map[api.UpdateCommand]string{api.UpdatePrepare: msgNoUpdate}[cmd] && err.Error() != msgNoStaged {
					t.Errorf("404 message %q", err)
				}
			})
		}
	}
}

// startGatedPrepare starts a server, refreshes and starts a prepare that
// the fake updater holds until openGate.
func startGatedPrepare(t *testing.T) *updateHarness {
	t.Helper()
	disk := newDisk()
	disk.Gate = "update-image"
	u := startUpdates(t, disk, nil)
	u.restoredOK(t)
	u.do(t, api.UpdateRefresh)
	if code, body := u.post(t, api.UpdatePrepare); code != http.StatusNoContent {
		t.Fatalf("prepare = %d %q", code, body)
	}
	return u
}

// TestUpdateLock holds a command in the fake updater: meanwhile every
// other command is a 423 and the status document still answers, naming
// the running command; when it ends the lock is free again.
func TestUpdateLock(t *testing.T) {
	u := startGatedPrepare(t)
	for _, cmd := range api.UpdateCommands() {
		if code, body := u.post(t, cmd); code != http.StatusLocked || body != "Update lock held" {
			t.Errorf("%s while prepare runs = %d %q, want 423 Update lock held", cmd, code, body)
		}
	}
	code, st, body := u.get(t)
	if code != http.StatusOK || st.RunningCommand == nil || st.RunningCommand.CmdType != api.UpdatePrepare || st.UpdateState != api.UpdateAvailable {
		t.Errorf("status while prepare runs = %d %s, want 200, Available, running prepare", code, body)
	}
	openGate(t, u.state)
	if got := summary(u.ended(t, api.UpdatePrepare)); !strings.HasPrefix(got, "Staged") {
		t.Errorf("after prepare: %s", got)
	}
	if got := summary(u.do(t, api.UpdateActivate)); !strings.HasPrefix(got, "Ready") {
		t.Errorf("after activate: %s", got)
	}
}

// TestUpdateFailures runs commands whose updater fails: the command is
// Failed with the updater's exit status and message, the state moves only
// where the disk changed (a failed prepare has cleared the inactive bank:
// Available again), and a refresh without an update (exit 3) succeeds.
func TestUpdateFailures(t *testing.T) {
	u := startUpdates(t, newDisk(), nil)
	u.restoredOK(t)
	u.do(t, api.UpdateRefresh)
	u.do(t, api.UpdatePrepare)
	disk := readDisk(t, u.state)
	disk.Fail = map[string]fakeFailure{
		"update-image": {1, "write bank B: verify root: dm-verity root hash 5e1f… differs from the signed 7a0c…"},
		"check-update": {1, "refresh metadata: timestamp.json: expired at 2024-01-01T00:00:00Z"},
	}
	writeDisk(t, u.state, disk)
	st := u.do(t, api.UpdatePrepare)
	if got, want := summary(st), "Available available=[0.2.0 0.1.1] chosen=0.2.0 active=A:0.1.0(next) staging=B:- last=prepare:Failed:1"; got != want {
		t.Errorf("after a failed prepare:\n got %s\nwant %s", got, want)
	}
	if c := st.MostRecentCommand; c.Stderr != disk.Fail["update-image"].Stderr {
		t.Errorf("stderr = %q, want the updater's", c.Stderr)
	}
	if code, body := u.post(t, api.UpdateActivate); code != http.StatusConflict {
		t.Errorf("activate after a failed prepare = %d %q, want 409", code, body)
	}
	st = u.do(t, api.UpdateRefresh)
	if got, want := summary(st), "Available available=[0.2.0 0.1.1] chosen=0.2.0 active=A:0.1.0(next) staging=B:- last=refresh:Failed:1"; got != want {
		t.Errorf("after a failed refresh:\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(st.MostRecentCommand.Stderr, "timestamp.json: expired") {
		t.Errorf("stderr = %q", st.MostRecentCommand.Stderr)
	}
	disk = readDisk(t, u.state)
	disk.Fail, disk.Available = nil, []string{"0.1.0"}
	writeDisk(t, u.state, disk)
	st = u.do(t, api.UpdateRefresh)
	if got, want := summary(st), "Idle available=[0.1.0] chosen=- active=A:0.1.0(next) staging=B:- last=refresh:Success:3"; got != want {
		t.Errorf("refresh without an update:\n got %s\nwant %s", got, want)
	}
	if code, body := u.post(t, api.UpdatePrepare); code != http.StatusConflict {
		t.Errorf("prepare without an update = %d %q, want 409", code, body)
	}
}

// TestUpdateRestore starts servers on disks in each state: the status
// document is rebuilt from "updater status" (Ready when the staging bank
// boots next, Staged when it holds a valid image), keeps the chosen
// update of the document before a restart, and stays uninitialized (404)
// when the updater cannot tell, until a refresh initializes it.
func TestUpdateRestore(t *testing.T) {
	staged := newDisk()
	staged.Versions["B"], staged.Staged = "0.2.0", true
	ready := staged
	ready.Next = "B"
	// After an update to B: A holds the old release, which the updater
	// does not name (it names only what update-image wrote).
	updated := newDisk()
	updated.Active, updated.Next, updated.Versions = "B", "B", map[string]string{"A": "0.1.0", "B": "0.2.0"}
	for _, tt := range []struct {
		name   string
		disk   fakeDisk
		before *api.UpdateStatus
		want   string
	}{
		{"new boot", newDisk(), nil, "Idle available=[] chosen=- active=A:0.1.0(next) staging=B:-"},
		{"staged", staged, nil, "Staged available=[] chosen=- active=A:0.1.0(next) staging=B:0.2.0"},
		{"ready", ready, nil, "Ready available=[] chosen=- active=A:0.1.0 staging=B:0.2.0(next)"},
		{"updated", updated, nil, "Idle available=[] chosen=- active=B:0.2.0(next) staging=A:-"},
		{"restart when available", newDisk(), &api.UpdateStatus{UpdateState: api.UpdateAvailable, AvailableUpdates: []string{"0.2.0"},
			ChosenUpdate: &api.UpdateImage{Version: "0.2.0"}, MostRecentCommand: &api.CommandResult{CmdType: api.UpdateRefresh, CmdStatus: api.CommandSuccess}},
			"Available available=[0.2.0] chosen=0.2.0 active=A:0.1.0(next) staging=B:- last=refresh:Success:0"},
		{"restart when the staged image is gone", newDisk(), &api.UpdateStatus{UpdateState: api.UpdateStaged, AvailableUpdates: []string{"0.2.0"},
			ChosenUpdate: &api.UpdateImage{Version: "0.2.0"}},
			"Available available=[0.2.0] chosen=0.2.0 active=A:0.1.0(next) staging=B:-"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := startUpdates(t, tt.disk, func(c *UpdateConfig) {
				if tt.before != nil {
					data, _ := json.Marshal(tt.before)
					os.MkdirAll(filepath.Dir(c.StatusPath), 0o755)
					if err := os.WriteFile(c.StatusPath, data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			})
			if got := summary(u.restoredOK(t)); got != tt.want {
				t.Errorf("restored:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
	t.Run("updater fails", func(t *testing.T) {
		disk := newDisk()
		disk.Fail = map[string]fakeFailure{"status": {1, "find OS disk: no disk holds the booted bank"}}
		u := startUpdates(t, disk, nil)
		code, _, body := u.restored(t)
		if code != http.StatusNotFound || body != msgUninitialized {
			t.Errorf("status when the updater cannot read the banks = %d %q, want 404 %q", code, body, msgUninitialized)
		}
		disk = readDisk(t, u.state)
		disk.Fail = nil
		writeDisk(t, u.state, disk)
		st := u.do(t, api.UpdateRefresh)
		if got, want := summary(st), "Available available=[0.2.0 0.1.1] chosen=0.2.0 active=A:0.1.0(next) staging=B:- last=refresh:Success:0"; got != want {
			t.Errorf("refresh initializes:\n got %s\nwant %s", got, want)
		}
	})
}

// TestUpdateTimeout holds update-apply past its timeout: the updater is
// stopped, the command fails saying so, the state stays Staged and the
// lock is free for the next command.
func TestUpdateTimeout(t *testing.T) {
	disk := newDisk()
	disk.Gate = "update-apply"
	u := startUpdates(t, disk, func(c *UpdateConfig) { c.Timeouts.Flip = 300 * time.Millisecond })
	u.restoredOK(t)
	u.do(t, api.UpdateRefresh)
	u.do(t, api.UpdatePrepare)
	st := u.do(t, api.UpdateActivate)
	if got, want := summary(st), "Staged available=[0.2.0 0.1.1] chosen=0.2.0 active=A:0.1.0(next) staging=B:0.2.0 last=activate:Failed:-1"; got != want {
		t.Errorf("after a timed-out activate:\n got %s\nwant %s", got, want)
	}
	if want := "updater update-apply stopped after 300ms: it did not finish in time"; st.MostRecentCommand.Stderr != want {
		t.Errorf("stderr = %q, want %q", st.MostRecentCommand.Stderr, want)
	}
	u.do(t, api.UpdateRefresh)
}

// TestUpdateMissingUpdater configures an updater that does not exist:
// the status stays uninitialized, and a refresh fails naming the program.
func TestUpdateMissingUpdater(t *testing.T) {
	dir := t.TempDir()
	cfg := &UpdateConfig{Updater: filepath.Join(dir, "no-updater"), StatusPath: filepath.Join(dir, "status.json"), LockPath: filepath.Join(dir, "lock")}
	h := startServerWith(t, 0o660, func(c *Config) { c.Updates = cfg })
	u := &updateHarness{harness: h, cfg: *cfg, status: cfg.StatusPath}
	code, body := u.post(t, api.UpdateRefresh)
	for code == http.StatusLocked { // the rebuild at start holds the lock
		time.Sleep(10 * time.Millisecond)
		code, body = u.post(t, api.UpdateRefresh)
	}
	if code != http.StatusNoContent {
		t.Fatalf("refresh = %d %q", code, body)
	}
	st := u.ended(t, api.UpdateRefresh)
	want := "run updater check-update: fork/exec " + cfg.Updater + ": no such file or directory"
	if c := st.MostRecentCommand; c.CmdStatus != api.CommandFailed || c.ExitStatus != -1 || c.Stderr != want {
		t.Errorf("most recent command %+v, want Failed, -1, %q", c, want)
	}
	if st.UpdateState != api.UpdateIdle {
		t.Errorf("state %s, want Idle", st.UpdateState)
	}
}

// TestUpdateShutdown stops the server while prepare runs: Serve stops the
// updater (SIGTERM) and returns, and the command is recorded as Failed.
func TestUpdateShutdown(t *testing.T) {
	u := startGatedPrepare(t)
	done := make(chan error, 1)
	go func() { done <- u.stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("Serve did not return within 20 s of its context's end while prepare ran")
	}
	var st api.UpdateStatus
	data, err := os.ReadFile(u.status)
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got, want := summary(st), "Available available=[0.2.0 0.1.1] chosen=0.2.0 active=A:0.1.0(next) staging=B:- last=prepare:Failed:-1"; got != want {
		t.Errorf("after the shutdown:\n got %s\nwant %s", got, want)
	}
	if want := "updater update-image stopped: the API server is shutting down"; st.MostRecentCommand.Stderr != want {
		t.Errorf("stderr = %q, want %q", st.MostRecentCommand.Stderr, want)
	}
}

// TestUpdateCLI runs apiclient's update subcommands against the server
// and the fake updater, as a user would: apply before a check is refused
// with a hint, check prints the status, apply --reboot writes, activates
// and reboots, cancel undoes the activation, apply --check stops when
// there is no update.
func TestUpdateCLI(t *testing.T) {
	u := startUpdates(t, newDisk(), nil)
	u.restoredOK(t)
	run := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := apiclient.Run(context.Background(), append([]string{"--socket-path", u.socket}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errOut := run("update", "apply")
	if want := "prepare is allowed in state Available or Staged, the state is Idle (is an update available? apiclient update check, or update apply --check)"; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("apply before check = %d %q %q, want 1 and %q", code, out, errOut, want)
	}
	code, out, errOut = run("update", "check")
	var st api.UpdateStatus
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || summary(st) != "Available available=[0.2.0 0.1.1] chosen=0.2.0 active=A:0.1.0(next) staging=B:- last=refresh:Success:0" {
		t.Errorf("check = %d %q %q, want the status, Available", code, out, errOut)
	}
	code, out, errOut = run("update", "apply", "--reboot")
	if code != 0 || u.rebooter.n != 1 || !strings.Contains(errOut, "Downloading update 0.2.0") || !strings.Contains(errOut, "Rebooting into the update.") {
		t.Errorf("apply --reboot = %d %q %q, %d reboots; want 0, one reboot", code, out, errOut, u.rebooter.n)
	}
	if _, st, _ := u.get(t); st.UpdateState != api.UpdateReady {
		t.Errorf("after apply: %s", summary(st))
	}
	if code, _, errOut = run("update", "cancel"); code != 0 {
		t.Errorf("cancel = %d %q", code, errOut)
	}
	if _, st, _ := u.get(t); summary(st) != "Staged available=[0.2.0 0.1.1] chosen=0.2.0 active=A:0.1.0(next) staging=B:0.2.0 last=deactivate:Success:0" {
		t.Errorf("after cancel: %s", summary(st))
	}
	code, _, errOut = run("update", "cancel")
	if want := "status 409: Update action not allowed according to update state: deactivate is allowed in state Ready, the state is Staged"; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("second cancel = %d %q, want 1 and %q", code, errOut, want)
	}
	disk := readDisk(t, u.state)
	disk.Available = nil
	disk.Versions["B"], disk.Staged = "", false
	writeDisk(t, u.state, disk)
	u.do(t, api.UpdateRefresh)
	code, _, errOut = run("update", "apply", "--check", "--reboot")
	if code != 0 || errOut != "No updates available.\n" || u.rebooter.n != 1 {
		t.Errorf("apply --check without an update = %d %q, %d reboots; want 0, No updates available., no reboot", code, errOut, u.rebooter.n)
	}
}
