package partflip

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/petrel-os/petrel/sources/flock"
)

// lockWait bounds how long a transition waits for another one to finish.
const lockWait = 30 * time.Second

// lockDisk takes an exclusive flock on the open disk (the device node, or
// the image file) so that read-modify-write transitions of the boot state
// run one at a time. onWait, if set, is called once when the lock is
// held elsewhere. The lock goes with the file's close.
func lockDisk(ctx context.Context, f *os.File, onWait func()) error {
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	if err := flock.Lock(ctx, f, onWait); err != nil {
		return fmt.Errorf("another partflip holds the disk: %w", err)
	}
	return nil
}
