package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/petrel-os/petrel/tools/project"
)

// versionTimeout bounds one version command; a tool that hangs on
// --version is reported rather than waited for.
const versionTimeout = 15 * time.Second

// Missing is a tool that is absent or too old.
type Missing struct {
	Tool project.Tool
	// Found is the version found, "" when the tool is absent or printed none.
	Found string
	// Reason says what is wrong, e.g. "not found in PATH".
	Reason string
}

// MissingError lists missing tools and how to install them.
type MissingError struct{ Missing []Missing }

func (e *MissingError) Error() string {
	var b strings.Builder
	b.WriteString("missing host tools:")
	for _, m := range e.Missing {
		fmt.Fprintf(&b, "\n  %s (Debian package %s): %s", m.Tool.Name(), m.Tool.Package, m.Reason)
	}
	fmt.Fprintf(&b, "\ninstall them with: apt-get install --no-install-recommends %s\nor run: buildctl setup",
		strings.Join(Packages(e.Missing), " "))
	return b.String()
}

// Packages returns the Debian packages of missing, each once, in order.
func Packages(missing []Missing) []string {
	var pkgs []string
	seen := map[string]bool{}
	for _, m := range missing {
		if !seen[m.Tool.Package] {
			seen[m.Tool.Package] = true
			pkgs = append(pkgs, m.Tool.Package)
		}
	}
	return pkgs
}

// LookPath finds command in PATH, then in /usr/sbin and /sbin.
func LookPath(command string) (string, error) {
	p, err := exec.LookPath(command)
	if err == nil {
		return p, nil
	}
	// System tools such as mkfs.ext4 live in sbin directories that an
	// unprivileged user's PATH may lack.
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		c := filepath.Join(d, command)
		if st, serr := os.Stat(c); serr == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	return "", fmt.Errorf("find %s: %w", command, err)
}

// Check checks every tool and returns those that are missing or older than
// their min-version. The error is only for a cancelled ctx.
func Check(ctx context.Context, tools []project.Tool) ([]Missing, error) {
	var missing []Missing
	for _, t := range tools {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("check host tools: %w", err)
		}
		if m, bad := checkTool(ctx, t); bad {
			missing = append(missing, m)
		}
	}
	return missing, nil
}

func checkTool(ctx context.Context, t project.Tool) (Missing, bool) {
	m := Missing{Tool: t}
	if t.File != "" {
		if _, err := os.Stat(t.File); err != nil {
			m.Reason = "file does not exist"
			return m, true
		}
		return m, false
	}
	path, err := LookPath(t.Command)
	if err != nil {
		m.Reason = "not found in PATH"
		return m, true
	}
	if t.MinVersion == "" {
		return m, false
	}
	args := t.VersionArgs
	if len(args) == 0 {
		args = []string{"--version"}
	}
	cctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(cctx, path, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	found := ParseVersion(out.String())
	m.Found = found
	switch {
	case found == "" && runErr != nil:
		m.Reason = fmt.Sprintf("%s %s failed: %v", t.Command, strings.Join(args, " "), runErr)
	case found == "":
		m.Reason = fmt.Sprintf("no version number in the output of %s %s", t.Command, strings.Join(args, " "))
	case CompareVersions(found, t.MinVersion) < 0:
		m.Reason = fmt.Sprintf("version %s is older than the minimum %s", found, t.MinVersion)
	default:
		return m, false
	}
	return m, true
}

var (
	dotted      = regexp.MustCompile(`(?:^|[^0-9A-Za-z.])v?([0-9]+(?:\.[0-9]+)+)`)
	afterString = regexp.MustCompile(`(?i)version\s+v?([0-9]+)`)
)

// ParseVersion returns the first version-looking number in out: the first
// dotted number ("4.18.0", "v1.9.4"), else a plain number after the word
// "version" ("kmod version 30"). It returns "" when there is none.
func ParseVersion(out string) string {
	if m := dotted.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	if m := afterString.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// CompareVersions compares dotted numeric versions field by field; missing
// fields count as 0. It returns -1, 0 or 1.
func CompareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		x, y := field(as, i), field(bs, i)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func field(f []string, i int) int {
	if i >= len(f) {
		return 0
	}
	n, _ := strconv.Atoi(f[i])
	return n
}

// runFunc runs one command with extra environment.
type runFunc func(ctx context.Context, env []string, stdout, stderr io.Writer, name string, args ...string) error

func runCommand(ctx context.Context, env []string, stdout, stderr io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("run %s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// Install installs the Debian packages of the missing tools: apt-get update
// once, then apt-get install -y --no-install-recommends, non-interactively
// (through sudo when not root). It then checks again and returns a
// *MissingError if something is still missing. Nothing runs when every tool
// is present.
func Install(ctx context.Context, tools []project.Tool, stdout, stderr io.Writer) error {
	return install(ctx, tools, stdout, stderr, runCommand, os.Geteuid() == 0)
}

func install(ctx context.Context, tools []project.Tool, stdout, stderr io.Writer, run runFunc, root bool) error {
	missing, err := Check(ctx, tools)
	if err != nil || len(missing) == 0 {
		return err
	}
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	apt := func(args ...string) error {
		if root {
			return run(ctx, env, stdout, stderr, "apt-get", args...)
		}
		return run(ctx, env, stdout, stderr, "sudo", append([]string{"--preserve-env=DEBIAN_FRONTEND", "apt-get"}, args...)...)
	}
	if err := apt("update"); err != nil {
		return fmt.Errorf("update package lists: %w", err)
	}
	args := append([]string{"install", "-y", "--no-install-recommends"}, Packages(missing)...)
	if err := apt(args...); err != nil {
		return fmt.Errorf("install host tools: %w", err)
	}
	still, err := Check(ctx, tools)
	if err != nil {
		return err
	}
	if len(still) > 0 {
		return &MissingError{Missing: still}
	}
	return nil
}

// ErrMissing is matched by errors.Is on a *MissingError.
var ErrMissing = errors.New("missing host tools")

// Is makes errors.Is(err, ErrMissing) hold.
func (e *MissingError) Is(target error) bool { return target == ErrMissing }
