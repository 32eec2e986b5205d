package testkit

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Helper returns a command that runs this test binary, running no test,
// with the environment variable name set to v as JSON: the package's
// TestMain finds the variable and runs a helper instead (an agent for a
// test to kill, or a small parent for a measurement).
func Helper(t testing.TB, name string, v any) *exec.Cmd {
	t.Helper()
	spec, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), name+"="+string(spec))
	return cmd
}

// RunKilled runs cmd, sends it SIGKILL after kill when kill is above 0,
// and reports whether SIGKILL ended it (whoever sent it), with everything
// it printed. Any other failure fails the test.
func RunKilled(t testing.TB, cmd *exec.Cmd, kill time.Duration) (killed bool, out string) {
	t.Helper()
	var b strings.Builder
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if kill > 0 {
		timer := time.AfterFunc(kill, func() { cmd.Process.Kill() })
		defer timer.Stop()
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true, b.String()
		}
	}
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b.String())
	}
	return false, b.String()
}

// KillSelf ends the calling process with SIGKILL, as a power cut would
// end it: no deferred function runs and nothing buffered is written. A
// crash test's helper calls it at the step it was told to stop before;
// RunKilled in the parent then reports the kill.
func KillSelf() {
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
