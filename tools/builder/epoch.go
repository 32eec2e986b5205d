package builder

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/petrel-os/petrel/tools/gitrev"
	"github.com/petrel-os/petrel/tools/project"
)

// sourceDateEpoch returns the committer time of the last commit that
// touched pkg's inputs (its directory, source groups and Go commands), or
// of HEAD when none did. Outside a git work tree it returns 0, so builds
// from an exported tree are still reproducible; any other git failure is
// an error with git's message.
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
	t, ok, err := gitrev.CommitTime(ctx, root, paths...)
	if errors.Is(err, gitrev.ErrNotRepository) {
		return 0, nil
	}
	if err != nil || ok {
		return t, err
	}
	t, _, err = gitrev.CommitTime(ctx, root)
	return t, err
}
