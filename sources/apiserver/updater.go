package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/updater"
)

// Bounds of what the API keeps of one run of the updater.
const (
	maxUpdaterStdout = 1 << 20
	maxUpdaterStderr = 16 << 10
)

// imageOf is the status document's form of an image the updater names.
func imageOf(i *updater.Image) *api.UpdateImage {
	if i == nil {
		return nil
	}
	return &api.UpdateImage{Variant: i.Variant, Arch: i.Arch, Version: i.Version.String()}
}

// partitionOf is the status document's form of a bank.
func partitionOf(p updater.Partition) *api.UpdatePartition {
	return &api.UpdatePartition{Bank: p.Bank.String(), Image: imageOf(p.Image), NextToBoot: p.NextToBoot}
}

// runResult is how one run of the updater ended.
type runResult struct {
	stdout []byte
	stderr string
	// exit is the exit code, -1 when the updater did not exit by itself
	// (not started, stopped by a signal).
	exit int
	// failure says why a run failed that the exit code does not explain,
	// e.g. the program is missing or timed out; it ends up in stderr.
	failure string
	// noUpdate accepts exit code 3 (no update) as success.
	noUpdate bool
}

func (r runResult) ok() bool {
	return r.failure == "" && (r.exit == 0 || r.noUpdate && r.exit == updater.ExitNoUpdate)
}

// fail marks a run that exited 0 as failed, with why.
func (r *runResult) fail(why string) {
	r.failure = why
	r.stderr = strings.TrimSpace(r.stderr + "\n" + why)
}

// summary says how a failed run ended, for the log.
func (r runResult) summary() string {
	if r.failure != "" {
		return r.failure
	}
	return fmt.Sprintf("exit status %d: %s", r.exit, r.stderr)
}

// runUpdater runs "Updater args... [--socket-path SocketPath]" for at
// most timeout. Its standard error goes to the log and, its last
// maxUpdaterStderr bytes, to the result; so does why it could not run or
// was stopped.
func (s *Server) runUpdater(ctx context.Context, timeout time.Duration, args ...string) runResult {
	cfg := s.updates.cfg
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	argv := args
	if cfg.SocketPath != "" {
		argv = append(slices.Clip(args), "--socket-path", cfg.SocketPath)
	}
	cmd := exec.CommandContext(ctx, cfg.Updater, argv...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	stdout := &capped{max: maxUpdaterStdout}
	stderr := &capped{max: maxUpdaterStderr, tail: true}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	start := time.Now()
	err := cmd.Run()
	res := runResult{stdout: stdout.buf.Bytes(), stderr: strings.TrimSpace(stderr.String()), exit: -1}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		res.fail(fmt.Sprintf("updater %s stopped after %s: it did not finish in time", args[0], timeout))
	case ctx.Err() != nil:
		res.fail(fmt.Sprintf("updater %s stopped: the API server is shutting down", args[0]))
	case errors.As(err, &ee) && ee.Exited():
		res.exit = ee.ExitCode()
	case err != nil:
		res.fail(fmt.Sprintf("run updater %s: %v", args[0], err))
	case stdout.cut:
		res.exit = 0
		res.fail(fmt.Sprintf("updater %s printed more than %d bytes", args[0], maxUpdaterStdout))
	default:
		res.exit = 0
	}
	level := s.log.Info
	if !res.ok() {
		level = s.log.Warn
	}
	level("updater ran", "args", args, "exit_status", res.exit, "duration", time.Since(start).Round(time.Millisecond), "stderr", res.stderr)
	return res
}

// capped is a writer that keeps at most max bytes: the first ones, or
// with tail the last ones.
type capped struct {
	buf  bytes.Buffer
	max  int
	tail bool
	cut  bool
}

func (c *capped) Write(p []byte) (int, error) {
	n := len(p)
	if c.tail {
		c.buf.Write(p)
		if over := c.buf.Len() - c.max; over > 0 {
			c.cut = true
			rest := append([]byte(nil), c.buf.Bytes()[over:]...)
			c.buf.Reset()
			c.buf.Write(rest)
		}
		return n, nil
	}
	if room := c.max - c.buf.Len(); len(p) > room {
		c.cut = true
		p = p[:max(room, 0)]
	}
	c.buf.Write(p)
	return n, nil
}

func (c *capped) String() string {
	if c.cut && c.tail {
		return "…" + c.buf.String()
	}
	return c.buf.String()
}
