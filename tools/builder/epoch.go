package builder

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/petrel-os/petrel/tools/project"
)

// sourceDateEpoch returns the committer time of the last commit that
// touched pkg's inputs (its directory, source groups and Go commands), or
// of HEAD when none did. Outside a git work tree it returns 0, so builds
// from an exported tree are still reproducible.
func sourceDateEpoch(ctx context.Context, root string, pkg *project.Package) (int64, error) {
	rel, err := filepath.Rel(root, pkg.Dir)
	if err != nil {
		return 0, fmt.Errorf("locate %q in %q: %w", pkg.Dir, root, err)
	}
	paths := []string{rel}
	for _, g := range pkg.SourceGroups {
		paths = append(paths, filepath.Join("sources", g))
	}
	for _, c := range pkg.GoCommands {
		paths = append(paths, filepath.Join("cmd", c))
	}
	if len(pkg.SourceGroups)+len(pkg.GoCommands) > 0 {
		paths = append(paths, "go.mod", "go.sum")
	}
	out, err := git(ctx, root, append([]string{"log", "-1", "--format=%ct", "--"}, paths...)...)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || errors.Is(err, exec.ErrNotFound) {
			return 0, nil // not a git work tree (or no git): fixed epoch
		}
		return 0, err
	}
	if out == "" {
		if out, err = git(ctx, root, "log", "-1", "--format=%ct"); err != nil || out == "" {
			return 0, nil // no commits yet
		}
	}
	n, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse commit time %q of %s: %w", out, rel, err)
	}
	return n, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}
