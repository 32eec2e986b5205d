package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/flock"
	"github.com/petrel-os/petrel/sources/outfile"
	"github.com/petrel-os/petrel/sources/updater"
)

// UpdateConfig wires the update routes (docs/api.md, "Updates"). The API
// server runs the state machine itself, as upstream's thar-be-updates
// does, and the updater agent (sources/updater) as a child process for
// each command: "Updater <verb> --json".
type UpdateConfig struct {
	// Updater is the updater agent program.
	Updater string
	// SocketPath, when set, is passed to the updater as --socket-path:
	// the API it reads settings.updates from.
	SocketPath string
	// StatusPath is the status document, on tmpfs: it lives for one boot
	// and survives a restart of the API server.
	StatusPath string
	// LockPath is flocked while a command runs; a second command meanwhile
	// is a 423.
	LockPath string
	// Timeouts bound one run of the updater; zero fields take the defaults
	// of DefaultUpdateTimeouts.
	Timeouts UpdateTimeouts
}

// UpdateTimeouts bound one run of the updater for each kind of command.
// A run that outlasts its bound is stopped (SIGTERM, SIGKILL 10 s later)
// and the command fails, so the lock cannot be held forever.
type UpdateTimeouts struct {
	// Refresh: check-update, which fetches the repository's metadata.
	Refresh time.Duration
	// Prepare: update-image, which streams the images into the inactive
	// bank.
	Prepare time.Duration
	// Flip: update-apply and update-revert, one sector write each.
	Flip time.Duration
	// Status: status, which reads the banks from the disk.
	Status time.Duration
}

// DefaultUpdateTimeouts are the bounds of the shipped API server: the
// updater's own fetch gives up on a stalled file after 4 tries of 30 s and
// on any file after an hour.
func DefaultUpdateTimeouts() UpdateTimeouts {
	return UpdateTimeouts{Refresh: 10 * time.Minute, Prepare: 2 * time.Hour, Flip: 2 * time.Minute, Status: time.Minute}
}

func (t UpdateTimeouts) withDefaults() UpdateTimeouts {
	d := DefaultUpdateTimeouts()
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.Refresh, &d.Refresh}, {&t.Prepare, &d.Prepare}, {&t.Flip, &d.Flip}, {&t.Status, &d.Status}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

// Messages of the update routes' client errors, as upstream's.
const (
	msgLockHeld      = "Update lock held"
	msgDisallowed    = "Update action not allowed according to update state"
	msgNoUpdate      = "Update does not exist"
	msgNoStaged      = "No staged image"
	msgUninitialized = "Update status is uninitialized, refresh-updates to initialize it"
)

// updates is the update state machine of one Server.
type updates struct {
	cfg UpdateConfig
	// running is the command running now, nil when none.
	running atomic.Pointer[api.RunningCommand]
	// now is the clock of the command timestamps.
	now func() time.Time
}

func newUpdates(cfg UpdateConfig) *updates {
	cfg.Timeouts = cfg.Timeouts.withDefaults()
	return &updates{cfg: cfg, now: func() time.Time { return time.Now().UTC() }}
}

// load reads the status document; an error matching fs.ErrNotExist means
// it was never written this boot.
func (u *updates) load() (*api.UpdateStatus, error) {
	data, err := os.ReadFile(u.cfg.StatusPath)
	if err != nil {
		return nil, err
	}
	var st api.UpdateStatus
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("decode update status %q: %w", u.cfg.StatusPath, err)
	}
	return &st, nil
}

// save replaces the status document atomically, so that a reader sees
// the old or the new one whole.
func (u *updates) save(st *api.UpdateStatus) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode update status: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(u.cfg.StatusPath), 0o755); err != nil {
		return fmt.Errorf("create directory of update status: %w", err)
	}
	return outfile.WriteFile(u.cfg.StatusPath, append(data, '\n'), outfile.Options{Mode: 0o644})
}

// lock takes the update lock, waiting only flock.Grace for a holder to
// let go: errorf 423 when a command holds it. Closing the file releases
// it.
func (u *updates) lock(ctx context.Context) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(u.cfg.LockPath), 0o755); err != nil {
		return nil, fmt.Errorf("create directory of update lock: %w", err)
	}
	f, err := os.OpenFile(u.cfg.LockPath, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open update lock: %w", err)
	}
	if err := flock.LockGrace(ctx, f); err != nil {
		f.Close()
		if errors.Is(err, flock.ErrLocked) && ctx.Err() == nil {
			return nil, errorf(http.StatusLocked, msgLockHeld)
		}
		return nil, fmt.Errorf("lock %q: %w", u.cfg.LockPath, err)
	}
	return f, nil
}

// allowed checks that the state machine allows cmd in st: a 409 for a
// command the state does not allow, a 404 when there is no update to
// prepare or no staged image to activate or deactivate.
func allowed(cmd api.UpdateCommand, st *api.UpdateStatus) error {
	staged := st.StagingPartition != nil && st.StagingPartition.Image != nil
	var states []api.UpdateState
	var missing string
	switch cmd {
	case api.UpdateRefresh:
		return nil
	case api.UpdatePrepare:
		states = []api.UpdateState{api.UpdateAvailable, api.UpdateStaged}
		if st.ChosenUpdate == nil {
			missing = msgNoUpdate
		}
	case api.UpdateActivate:
		states = []api.UpdateState{api.UpdateStaged}
		if !staged {
			missing = msgNoStaged
		}
	case api.UpdateDeactivate:
		states = []api.UpdateState{api.UpdateReady}
		if !staged {
			missing = msgNoStaged
		}
	default:
		return fmt.Errorf("unknown update command %q", cmd)
	}
	if !slices.Contains(states, st.UpdateState) {
		return errorf(http.StatusConflict, "%s: %s is allowed in state %s, the state is %s",
			msgDisallowed, cmd, joinStates(states), st.UpdateState)
	}
	if missing != "" {
		return errorf(http.StatusNotFound, "%s", missing)
	}
	return nil
}

func joinStates(states []api.UpdateState) string {
	s := string(states[0])
	for _, st := range states[1:] {
		s += " or " + string(st)
	}
	return s
}

// getUpdateStatus answers GET /updates/status: the document as the last
// command left it, and the command running now, if any.
func (s *Server) getUpdateStatus(*http.Request) (any, error) {
	u := s.updates
	// The running command first: a command writes the document before it
	// stops running, so a document read after a command was seen ending
	// holds its result.
	running := u.running.Load()
	st, err := u.load()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(http.StatusNotFound, msgUninitialized)
	}
	if err != nil {
		return nil, err
	}
	st.RunningCommand = running
	return st, nil
}

// startUpdate answers a POST to an update action: it takes the lock (423
// when held), checks the state machine (409, 404), then runs the command
// in the background and answers 204 at once; the command's outcome is in
// the status document when it ends.
func (s *Server) startUpdate(cmd api.UpdateCommand) func(*http.Request) (any, error) {
	return func(r *http.Request) (any, error) {
		u := s.updates
		lock, err := u.lock(r.Context())
		if err != nil {
			return nil, err
		}
		st, err := u.load()
		if errors.Is(err, fs.ErrNotExist) {
			// The first command initializes the document, as upstream.
			st = &api.UpdateStatus{UpdateState: api.UpdateIdle, AvailableUpdates: []string{}}
			err = u.save(st)
		}
		if err == nil {
			err = allowed(cmd, st)
		}
		if err != nil {
			lock.Close()
			return nil, err
		}
		u.running.Store(&api.RunningCommand{CmdType: cmd, Started: u.now()})
		s.log.Info("update command started", "command", cmd, "state", st.UpdateState)
		s.background(func(ctx context.Context) {
			// The lock is released before the command stops showing as
			// running: a client that sees it ended can start the next.
			defer u.running.Store(nil)
			defer lock.Close()
			s.runUpdate(ctx, cmd, st)
		})
		return nil, nil
	}
}

// runUpdate runs cmd's updater verb, moves the state machine and writes
// the status document with the command's result.
func (s *Server) runUpdate(ctx context.Context, cmd api.UpdateCommand, st *api.UpdateStatus) {
	u := s.updates
	t := u.cfg.Timeouts
	var res runResult
	switch cmd {
	case api.UpdateRefresh:
		res = s.runUpdater(ctx, t.Refresh, "check-update", "--json")
		res.noUpdate = true
		if res.ok() {
			if err := applyCheck(st, res.stdout); err != nil {
				res.fail(err.Error())
			}
		}
	case api.UpdatePrepare:
		res = s.runUpdater(ctx, t.Prepare, "update-image", "--version", st.ChosenUpdate.Version, "--json")
		switch {
		case res.ok():
			st.UpdateState = api.UpdateStaged
		default:
			// The updater clears the inactive bank before it writes:
			// whatever it held is gone.
			st.UpdateState = api.UpdateAvailable
		}
	case api.UpdateActivate:
		if res = s.runUpdater(ctx, t.Flip, "update-apply", "--json"); res.ok() {
			st.UpdateState = api.UpdateReady
		}
	case api.UpdateDeactivate:
		if res = s.runUpdater(ctx, t.Flip, "update-revert", "--json"); res.ok() {
			st.UpdateState = api.UpdateStaged
		}
	}
	// The disk has the last word: a bank written or flipped by hand, or
	// cleared by a failed write, moves the state too.
	if ctx.Err() == nil {
		if b, err := s.readBanks(ctx, st); err != nil {
			s.log.Warn("read the banks after an update command", "command", cmd, "error", err)
		} else {
			st.UpdateState = stateFromBanks(st, b)
		}
	}
	status := api.CommandSuccess
	if !res.ok() {
		status = api.CommandFailed
	}
	st.MostRecentCommand = &api.CommandResult{CmdType: cmd, CmdStatus: status, Timestamp: u.now(), ExitStatus: res.exit, Stderr: res.stderr}
	if err := u.save(st); err != nil {
		s.log.Error("write update status", "command", cmd, "error", err)
		return
	}
	s.log.Info("update command ended", "command", cmd, "status", status, "exit_status", res.exit, "state", st.UpdateState)
}

// applyCheck takes check-update's answer into st: the available updates
// and the chosen one, and Idle or Available unless an update is staged.
func applyCheck(st *api.UpdateStatus, stdout []byte) error {
	var check updater.CheckResult
	if err := json.Unmarshal(stdout, &check); err != nil {
		return fmt.Errorf("decode the output of updater check-update: %w", err)
	}
	st.AvailableUpdates = []string{}
	for _, v := range check.AvailableUpdates {
		st.AvailableUpdates = append(st.AvailableUpdates, v.String())
	}
	st.ChosenUpdate = imageOf(check.ChosenUpdate)
	switch st.UpdateState {
	case api.UpdateIdle, api.UpdateAvailable, "":
		st.UpdateState = api.UpdateIdle
		if st.ChosenUpdate != nil {
			st.UpdateState = api.UpdateAvailable
		}
	}
	return nil
}

// readBanks sets st's partitions from "updater status --json", which
// reads them from the disk, and returns what it said.
func (s *Server) readBanks(ctx context.Context, st *api.UpdateStatus) (updater.BankStatus, error) {
	var b updater.BankStatus
	res := s.runUpdater(ctx, s.updates.cfg.Timeouts.Status, "status", "--json")
	if !res.ok() {
		return b, fmt.Errorf("updater status: %s", res.summary())
	}
	if err := json.Unmarshal(res.stdout, &b); err != nil {
		return b, fmt.Errorf("decode the output of updater status: %w", err)
	}
	st.ActivePartition = partitionOf(b.ActivePartition)
	st.StagingPartition = partitionOf(b.StagingPartition)
	return b, nil
}

// restoreUpdates rebuilds the status document when the server starts:
// the partitions from the disk, and the state from them (Ready when the
// staging bank boots next, Staged when it holds a written image, else
// what the document said before a restart, or Idle on a new boot).
// Without an answer from the updater the document stays as it was, and
// uninitialized on a new boot: a refresh initializes it.
func (s *Server) restoreUpdates(ctx context.Context) {
	u := s.updates
	lock, err := u.lock(ctx)
	if err != nil {
		s.log.Warn("restore update status", "error", err)
		return
	}
	defer lock.Close()
	st, err := u.load()
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("read update status; starting a new one", "error", err)
		}
		st = &api.UpdateStatus{UpdateState: api.UpdateIdle, AvailableUpdates: []string{}}
	}
	b, err := s.readBanks(ctx, st)
	if err != nil {
		s.log.Warn("update status stays uninitialized until a refresh", "error", err)
		return
	}
	st.UpdateState = stateFromBanks(st, b)
	if err := u.save(st); err != nil {
		s.log.Error("write update status", "error", err)
		return
	}
	s.log.Info("update status restored", "state", st.UpdateState)
}

// stateFromBanks is the state that the banks, as read from the disk,
// imply for st: a staging bank that holds a written image and is marked
// valid is Ready when it boots next, else Staged; otherwise Available
// when st has a chosen update and is not Idle, else Idle.
func stateFromBanks(st *api.UpdateStatus, b updater.BankStatus) api.UpdateState {
	p := b.StagingPartition
	staged := p.Image != nil && p.Valid
	switch {
	case staged && p.NextToBoot:
		return api.UpdateReady
	case staged:
		return api.UpdateStaged
	case st.UpdateState != api.UpdateIdle && st.ChosenUpdate != nil:
		return api.UpdateAvailable
	}
	return api.UpdateIdle
}
