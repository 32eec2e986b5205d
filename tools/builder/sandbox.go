package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Paths inside the sandbox. They are fixed, so that no host path (such as
// the build directory) can leak into an RPM and break reproducibility.
const (
	sandboxTop     = "/tmp/build"   // the per-build rpmbuild tree
	sandboxGoCache = "/tmp/gocache" // the shared, writable Go build cache
	sandboxPath    = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// sandbox runs commands under bubblewrap: the host's root read-only, a
// private tmpfs /tmp with the build tree and the Go cache bound in, every
// namespace unshared (so there is no network), and a clean, fixed
// environment.
type sandbox struct {
	// top is the host directory bound at sandboxTop.
	top string
	// goCache is the host directory bound at sandboxGoCache ("" = none).
	goCache string
	// goBin is the host directory of the go command, put first in PATH.
	goBin string
	// epoch is SOURCE_DATE_EPOCH.
	epoch string
}

// command returns the bwrap command that runs argv in the sandbox. Run it
// with its Run method: when ctx ends, that kills the whole sandbox.
func (s *sandbox) command(ctx context.Context, argv ...string) *sandboxCmd {
	path := sandboxPath
	if s.goBin != "" && !slices.Contains(strings.Split(path, ":"), s.goBin) {
		path = s.goBin + ":" + path
	}
	args := []string{
		"--ro-bind", "/", "/",
		"--dev", "/dev",
		"--proc", "/proc",
		"--tmpfs", "/tmp",
		"--bind", s.top, sandboxTop,
	}
	if s.goCache != "" {
		args = append(args, "--bind", s.goCache, sandboxGoCache)
	}
	args = append(args,
		"--unshare-all",
		"--die-with-parent",
		"--new-session",
		"--info-fd", "3",
		"--clearenv",
		"--setenv", "HOME", "/tmp",
		"--setenv", "PATH", path,
		"--setenv", "LANG", "C",
		"--setenv", "LC_ALL", "C",
		"--setenv", "TZ", "UTC",
		"--setenv", "TMPDIR", "/tmp",
		"--setenv", "SOURCE_DATE_EPOCH", s.epoch,
		"--setenv", "GOCACHE", sandboxGoCache,
		"--setenv", "GOTOOLCHAIN", "local",
		"--setenv", "GOPROXY", "off",
		"--chdir", sandboxTop,
		"--",
	)
	cmd := exec.CommandContext(ctx, "bwrap", append(args, argv...)...)
	cmd.Env = []string{"PATH=" + sandboxPath}
	sc := &sandboxCmd{Cmd: cmd, pidfd: -1}
	cmd.Cancel = sc.kill
	cmd.WaitDelay = sandboxWaitDelay
	return sc
}

// sandboxWaitDelay bounds the wait for bwrap once its sandbox was killed.
const sandboxWaitDelay = 10 * time.Second

// sandboxCmd is a bwrap command. bwrap runs the sandbox as a child process
// (pid 1 of the sandbox's pid namespace) and waits for it. Killing bwrap
// alone, as exec.CommandContext does, leaves that child to die of its
// parent-death signal after bwrap is gone, unreaped: a "bwrap" process
// that outlives the build. So a cancelled command kills the child instead;
// the kernel then kills every process of the namespace, bwrap reaps the
// child and exits, and nothing remains.
type sandboxCmd struct {
	*exec.Cmd
	// pidfd refers to bwrap's child once Run has learnt it from bwrap's
	// --info-fd; -1 before. kill reads it from exec's context goroutine,
	// which Wait joins before Run closes it.
	pidfd int
	mu    sync.Mutex
}

// Run starts bwrap, learns its child from --info-fd and waits for it.
func (c *sandboxCmd) Run() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start sandbox: %w", err)
	}
	defer r.Close()
	c.ExtraFiles = []*os.File{w} // fd 3 in bwrap
	err = c.Start()
	w.Close()
	if err != nil {
		return err
	}
	var info struct {
		ChildPid int `json:"child-pid"`
	}
	// bwrap writes the object right after it made the child, or closes
	// the pipe when it fails first.
	if json.NewDecoder(r).Decode(&info) == nil && info.ChildPid > 0 {
		if fd, err := unix.PidfdOpen(info.ChildPid, 0); err == nil {
			c.mu.Lock()
			c.pidfd = fd
			c.mu.Unlock()
		}
	}
	err = c.Wait()
	c.mu.Lock()
	if c.pidfd >= 0 {
		unix.Close(c.pidfd)
		c.pidfd = -1
	}
	c.mu.Unlock()
	return err
}

// kill is exec.Cmd.Cancel: it kills bwrap's child (through a pidfd, so a
// reused pid is never hit), or bwrap itself when the child is not known.
func (c *sandboxCmd) kill() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pidfd >= 0 {
		if err := unix.PidfdSendSignal(c.pidfd, unix.SIGKILL, nil, 0); err == nil || errors.Is(err, unix.ESRCH) {
			return nil
		}
	}
	return c.Process.Kill()
}
