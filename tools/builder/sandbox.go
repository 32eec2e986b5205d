package builder

import (
	"context"
	"os/exec"
	"slices"
	"strings"
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

// command returns the bwrap command that runs argv in the sandbox.
func (s *sandbox) command(ctx context.Context, argv ...string) *exec.Cmd {
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
	return cmd
}
