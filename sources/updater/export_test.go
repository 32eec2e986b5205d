package updater

import (
	"context"
	"io"
	"time"

	"github.com/petrel-os/petrel/sources/cli"
)

// MainWithStep is Main with step called before each step that writes to
// the disk or to PRIVATE (the crash tests stop the agent there) and quick
// retries.
func MainWithStep(ctx context.Context, args []string, stdout, stderr io.Writer, step func(string)) int {
	a := &agent{o: defaultAgentOptions(), stdout: stdout, stderr: stderr, step: step,
		fetch: FetchOptions{Backoff: 10 * time.Millisecond, StallTimeout: 10 * time.Second}}
	return cli.Run(ctx, a.command(), args, stdout, stderr)
}
