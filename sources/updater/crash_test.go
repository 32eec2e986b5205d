package updater_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/sources/updater"
)

// crashEnv makes the test binary run the agent instead of the tests (see
// TestMain): a JSON crashArgs.
const crashEnv = "PETREL_UPDATER_CRASH_TEST"

type crashArgs struct {
	Args []string
	// StopAt names the step before which the agent SIGKILLs itself.
	StopAt string
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(crashEnv); spec != "" {
		os.Exit(crashHelper(spec))
	}
	if spec := os.Getenv(rssEnv); spec != "" {
		os.Exit(rssHelper(spec))
	}
	os.Exit(m.Run())
}

// crashHelper is the agent process of the crash test.
func crashHelper(spec string) int {
	var a crashArgs
	if err := json.Unmarshal([]byte(spec), &a); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return updater.MainWithStep(context.Background(), a.Args, os.Stdout, os.Stderr, func(name string) {
		if name == a.StopAt {
			testkit.KillSelf()
		}
	})
}

// steps records the write steps of an undisturbed update.
func steps(t *testing.T, h *testHost) []string {
	t.Helper()
	var names []string
	var out, errb bytes.Buffer
	if code := updater.MainWithStep(context.Background(), h.args("update"), &out, &errb, func(n string) { names = append(names, n) }); code != 0 {
		t.Fatalf("update: exit %d\n%s", code, errb.String())
	}
	return names
}

// checkOldBankBoots checks what a crash must leave: the booted bank A
// boots next, exactly as before, and bank B is not bootable unless it was
// completely written and marked valid (then it is still not chosen).
func checkOldBankBoots(t *testing.T, h *testHost, when string) {
	t.Helper()
	s, _ := h.bootState()
	if d := bootstate.Next(s); d.Bank != bootstate.BankA || d.Fallback || s.A != bootstate.Initial().A {
		t.Errorf("killed %s: boot state %+v chooses bank %s; want bank A as before", when, s, d.Bank)
	}
	if s.B.Priority != 0 || s.B.Successful {
		t.Errorf("killed %s: bank B %+v may boot", when, s.B)
	}
	if s.B.TriesLeft > 0 {
		if err := h.holds(h.repo.releases["0.2.0"]); err != nil {
			t.Errorf("killed %s: bank B is marked valid but %v", when, err)
		}
	}
}

// TestCrash kills the agent (a real process) before each of its write
// steps, and in the middle of streaming each large image, during an
// `update`: the booted bank still boots and a second `update` completes.
func TestCrash(t *testing.T) {
	t.Parallel()
	repo := published(t)
	sock, _ := apiServer(t)
	// URLs as the defaults give them, {variant} and {arch} for the
	// running image's.
	setUpdates(t, sock, map[string]any{
		"metadata-base-url": repo.srv.URL + "/{variant}/{arch}/metadata", "targets-base-url": repo.srv.URL + "/{variant}/{arch}/targets",
		"seed": 1, "version-lock": "latest", "ignore-waves": true,
	})
	all := steps(t, newHost(t, repo, sock))
	for _, want := range []string{"clear-inactive", "remove staged.json", "write root", "writing root", "write boot", "writing boot",
		"write hash", "sync", "check", "save migrations", "save metadata", "write staged.json", "mark-inactive-valid", "upgrade-to-inactive"} {
		if !strings.Contains(strings.Join(all, "\n")+"\n", want+"\n") {
			t.Fatalf("the update has no step %q (steps %q)", want, all)
		}
	}
	for _, step := range all {
		t.Run(step, func(t *testing.T) {
			h := newHost(t, repo, sock)
			if killed, out := testkit.RunKilled(t, testkit.Helper(t, crashEnv, crashArgs{Args: h.args("update"), StopAt: step}), 0); !killed {
				t.Fatalf("the agent was not killed before %q:\n%s", step, out)
			}
			checkOldBankBoots(t, h, "before "+step)
			h.mustRun("update")
			s, _ := h.bootState()
			if d := bootstate.Next(s); d.Bank != bootstate.BankB || !d.SpentTry {
				t.Errorf("second update: next boot %+v, want bank B", d)
			}
			if err := h.holds(repo.releases["0.2.0"]); err != nil {
				t.Error(err)
			}
		})
	}
}

var (
	petrelOnce sync.Once
	petrelBin  string
)

// petrel builds the multi-call binary once per test run, as the os
// package does.
func petrel(t *testing.T) string {
	t.Helper()
	petrelOnce.Do(func() {
		dir, err := os.MkdirTemp("", "petrel-bin")
		if err != nil {
			t.Fatal(err)
		}
		petrelBin = testkit.GoBuild(t, "github.com/petrel-os/petrel/cmd/petrel", filepath.Join(dir, "petrel"))
	})
	if petrelBin == "" {
		t.Fatal("the multi-call binary was not built")
	}
	return petrelBin
}

// TestCrashShipped kills the shipped binary at random moments of an
// update: unless the kill came after the update's last write (then the
// boot state is exactly an undisturbed update's and bank B holds the
// release), the booted bank still boots; either way a second update
// completes.
func TestCrashShipped(t *testing.T) {
	t.Parallel()
	bin := petrel(t)
	repo := published(t)
	sock, _ := apiServer(t)
	setUpdates(t, sock, map[string]any{
		"metadata-base-url": repo.srv.URL + "/metadata", "targets-base-url": repo.srv.URL + "/targets",
		"seed": 1, "version-lock": "latest", "ignore-waves": true,
	})
	// How long an undisturbed update takes.
	h := newHost(t, repo, sock)
	start := time.Now()
	if killed, out := testkit.RunKilled(t, exec.Command(bin, append([]string{"updater"}, h.args("update")...)...), 0); killed {
		t.Fatalf("undisturbed update killed:\n%s", out)
	}
	full := time.Since(start)
	done, _ := h.bootState()
	if bootstate.Next(done).Bank != bootstate.BankB {
		t.Fatalf("the undisturbed update left boot state %+v, which does not choose bank B", done)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for i := range 6 {
		h := newHost(t, repo, sock)
		after := time.Duration(rng.Int64N(int64(full)))
		killed, out := testkit.RunKilled(t, exec.Command(bin, append([]string{"updater"}, h.args("update")...)...), after)
		t.Logf("run %d: killed after %v of %v: %t", i, after.Round(time.Millisecond), full.Round(time.Millisecond), killed)
		if s, _ := h.bootState(); killed && s == done {
			// Killed after its last write, on its way out (CI saw one
			// at 214 ms of 466 ms): the update is complete.
			if err := h.holds(repo.releases["0.2.0"]); err != nil {
				t.Errorf("run %d: killed after %v with bank B next to boot, but %v", i, after, err)
			}
		} else if killed {
			checkOldBankBoots(t, h, fmt.Sprintf("after %v", after))
		} else if !strings.Contains(out, "next to boot") {
			t.Errorf("run %d finished without a bank next to boot:\n%s", i, out)
		}
		h.mustRun("update")
		if s, _ := h.bootState(); bootstate.Next(s).Bank != bootstate.BankB {
			t.Errorf("run %d: the second update left the next boot on bank %s", i, bootstate.Next(s).Bank)
		}
	}
}
