package image

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
)

// Identify returns the build ID (the short commit id, with "-dirty" when the
// work tree has changes) and SOURCE_DATE_EPOCH (HEAD's committer time) of
// the project at root. Outside git it returns "00000000" and 0, like
// upstream's fallback.
func Identify(ctx context.Context, root string) (buildID string, epoch int64) {
	run := func(args ...string) (string, bool) {
		out, err := exec.CommandContext(ctx, "git", append([]string{"-C", root}, args...)...).Output()
		return strings.TrimSpace(string(out)), err == nil
	}
	id, ok := run("describe", "--always", "--dirty", "--abbrev=8", "--exclude", "*")
	if !ok || id == "" {
		return "00000000", 0
	}
	ts, _ := run("log", "-1", "--format=%ct")
	epoch, _ = strconv.ParseInt(ts, 10, 64)
	return id, epoch
}
