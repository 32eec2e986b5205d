package gitrev

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// ErrNotRepository marks a directory that is not inside a git work tree.
var ErrNotRepository = errors.New("not a git work tree")

// Git runs git with args in dir and returns its trimmed standard output.
// Git runs in the C locale, so that its messages can be recognized. A
// failure is returned with git's standard error; one that says dir is not
// a git repository also matches ErrNotRepository.
func Git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANGUAGE=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "not a git repository") {
			err = fmt.Errorf("%w: %w", ErrNotRepository, err)
		}
		if msg != "" {
			return "", fmt.Errorf("git %s in %s: %w: %s", strings.Join(args, " "), dir, err, msg)
		}
		return "", fmt.Errorf("git %s in %s: %w", strings.Join(args, " "), dir, err)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// BuildID returns the short (8-digit) id of HEAD of the work tree at root,
// with "-dirty" when tracked files have changes.
func BuildID(ctx context.Context, root string) (string, error) {
	id, err := Git(ctx, root, "describe", "--always", "--dirty", "--abbrev=8", "--exclude", "*")
	if err != nil {
		return "", fmt.Errorf("read build ID: %w", err)
	}
	if id == "" {
		return "", fmt.Errorf("read build ID: git describe in %s printed nothing", root)
	}
	return id, nil
}

// CommitTime returns the committer time (Unix seconds) of the last commit
// of the repository at root that touched one of paths (relative to root),
// or of HEAD when paths is empty. ok is false when no commit touched them.
func CommitTime(ctx context.Context, root string, paths ...string) (t int64, ok bool, err error) {
	args := []string{"log", "-1", "--format=%ct"}
	if len(paths) > 0 {
		args = append(append(args, "--"), paths...)
	}
	out, err := Git(ctx, root, args...)
	if err != nil {
		return 0, false, fmt.Errorf("read commit time: %w", err)
	}
	if out == "" {
		return 0, false, nil
	}
	t, err = strconv.ParseInt(out, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("read commit time: git log in %s printed %q, want Unix seconds", root, out)
	}
	return t, true, nil
}
