package image

import (
	"context"
	"errors"
	"log/slog"

	"github.com/petrel-os/petrel/tools/gitrev"
)

// NoBuildID is the build ID of a project outside a git work tree, as
// upstream's fallback.
const NoBuildID = "00000000"

// Identify returns the build ID (the short commit id, with "-dirty" when
// the work tree has changes) and SOURCE_DATE_EPOCH (HEAD's committer time)
// of the project at root. Outside a git work tree, and only there, it
// returns NoBuildID and 0 and logs a warning that says so; any other git
// failure is an error with git's message.
func Identify(ctx context.Context, root string, logger *slog.Logger) (buildID string, epoch int64, err error) {
	id, err := gitrev.BuildID(ctx, root)
	if errors.Is(err, gitrev.ErrNotRepository) {
		if logger != nil {
			logger.Warn("the project is not a git work tree: build ID "+NoBuildID+" and SOURCE_DATE_EPOCH 0", "project", root)
		}
		return NoBuildID, 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	epoch, _, err = gitrev.CommitTime(ctx, root)
	if err != nil {
		return "", 0, err
	}
	return id, epoch, nil
}
