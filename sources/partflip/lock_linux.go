package partflip

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
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
	waited := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if !waited && onWait != nil {
			onWait()
		}
		waited = true
		select {
		case <-ctx.Done():
			return fmt.Errorf("lock %s: another partflip holds it: %w", f.Name(), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
