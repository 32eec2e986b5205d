package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
)

// scriptedUpdates is an update API whose answers a test scripts: the
// action's answer, then how the status reads go while the command "runs".
type scriptedUpdates struct {
	mu sync.Mutex
	// action is the code of the answer to a POST (204 starts the command).
	action int
	// reads are the codes of the status reads after the POST, in order;
	// once they run out, the reads show the command ended with result.
	reads  []int
	result api.CommandResult
	// uninitialized makes the status reads before the POST a 404.
	uninitialized bool
	st            api.UpdateStatus
	posted        bool
}

func (s *scriptedUpdates) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method == http.MethodPost {
		if s.action != http.StatusNoContent {
			http.Error(w, "Update action not allowed according to update state", s.action)
			return
		}
		s.posted = true
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !s.posted && s.uninitialized {
		http.Error(w, "Update status is uninitialized, refresh-updates to initialize it", http.StatusNotFound)
		return
	}
	if s.posted && len(s.reads) > 0 {
		code := s.reads[0]
		s.reads = s.reads[1:]
		if code != http.StatusOK {
			http.Error(w, http.StatusText(code), code)
			return
		}
	} else if s.posted {
		r := s.result
		s.st.MostRecentCommand = &r
	}
	json.NewEncoder(w).Encode(s.st)
}

func serveScripted(t *testing.T, h http.Handler) *apiclient.Client {
	t.Helper()
	dir, err := os.MkdirTemp("", "apiu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := apiclient.New(sock)
	t.Cleanup(c.Close)
	return c
}

// TestUpdateWait checks how Client.Update waits for a command: until a
// command of its type with a new timestamp shows; 423s do not count as
// failures, more than five failed reads end the wait, a failed command
// is an *UpdateError with the updater's message, a refusal a
// *StatusError, and a command that does not end in time says so.
func TestUpdateWait(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	old := api.CommandResult{CmdType: api.UpdatePrepare, CmdStatus: api.CommandSuccess, Timestamp: t0}
	done := api.CommandResult{CmdType: api.UpdatePrepare, CmdStatus: api.CommandSuccess, Timestamp: t0.Add(time.Second)}
	failed := api.CommandResult{CmdType: api.UpdatePrepare, CmdStatus: api.CommandFailed, Timestamp: t0.Add(time.Second), ExitStatus: 1,
		Stderr: "write bank B: root.ext4.zst: length 70000001 is over the signed length 70000000\n"}
	poll := apiclient.Poll{Interval: time.Millisecond, Attempts: 20}
	for _, tt := range []struct {
		name    string
		s       *scriptedUpdates
		wantErr string // "" success
	}{
		{"ends", &scriptedUpdates{action: 204, reads: []int{200, 200}, result: done}, ""},
		{"first command", &scriptedUpdates{action: 204, uninitialized: true, result: done}, ""},
		{"423 while running", &scriptedUpdates{action: 204, reads: []int{423, 423, 423, 423, 423, 423, 423, 423}, result: done}, ""},
		{"five failed reads", &scriptedUpdates{action: 204, reads: []int{500, 503, 500, 500, 500}, result: done}, ""},
		{"six failed reads", &scriptedUpdates{action: 204, reads: []int{500, 503, 500, 500, 500, 500}, result: done},
			"wait for update prepare: 6 reads of the status failed, the last: GET /updates/status: status 500: Internal Server Error"},
		{"failed", &scriptedUpdates{action: 204, result: failed},
			"update prepare failed (updater exit status 1): write bank B: root.ext4.zst: length 70000001 is over the signed length 70000000"},
		{"never ends", &scriptedUpdates{action: 204, result: old},
			"update prepare did not end within 20ms; the host may still be working on it (see apiclient get /updates/status)"},
		{"refused", &scriptedUpdates{action: 409},
			"POST /actions/prepare-update: status 409: Update action not allowed according to update state"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.st = api.UpdateStatus{UpdateState: api.UpdateAvailable, MostRecentCommand: &old}
			c := serveScripted(t, tt.s)
			st, err := c.Update(context.Background(), api.UpdatePrepare, poll)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Update = %v", err)
			case tt.wantErr == "" && !st.MostRecentCommand.Timestamp.Equal(done.Timestamp):
				t.Errorf("Update returned the status of %+v", st.MostRecentCommand)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("Update = %v, want %q", err, tt.wantErr)
			}
			if tt.name == "failed" && !errors.Is(err, apiclient.ErrUpdateFailed) {
				t.Errorf("a failed command does not match ErrUpdateFailed")
			}
		})
	}
}

// TestUpdateUsage checks the update subcommand's command line.
func TestUpdateUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"update"}, "update needs a subcommand: check, apply or cancel"},
		{[]string{"update", "now"}, `unknown command "now"`},
		{[]string{"update", "apply", "--soon"}, "unknown flag: --soon"},
		{[]string{"update", "check", "x"}, `unknown command "x"`},
	} {
		code, _, stderr := run(t, "", append([]string{"--socket-path", "/nonexistent.sock"}, tt.args...)...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v = %d %q, want 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
}
