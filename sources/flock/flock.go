// Package flock takes exclusive flock(2) locks on open files, the way
// Petrel's agents keep each other off shared state: the boot state sector
// of the OS disk (partflip, the updater), the updater's own command lock
// and its metadata cache. A lock goes with the file's close or the
// process's end, so a killed holder never leaves one behind. Own code
// rather than a library: it is one system call and a wait loop that
// honours a context.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ErrLocked: another process holds the lock.
var ErrLocked = errors.New("held by another process")

// poll is how often Lock tries again while another process holds the
// lock.
const poll = 10 * time.Millisecond

// TryLock takes an exclusive lock on f, or fails at once with ErrLocked.
func TryLock(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EWOULDBLOCK):
		return fmt.Errorf("lock %s: %w", f.Name(), ErrLocked)
	}
	return fmt.Errorf("lock %s: %w", f.Name(), err)
}

// Lock takes an exclusive lock on f, waiting while ctx lasts. onWait, if
// set, is called once when another process holds the lock. When ctx ends
// first, the error wraps ErrLocked and ctx's error.
func Lock(ctx context.Context, f *os.File, onWait func()) error {
	waited := false
	for {
		err := TryLock(f)
		if !errors.Is(err, ErrLocked) {
			return err
		}
		if !waited && onWait != nil {
			onWait()
		}
		waited = true
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", err, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// Grace is how long LockGrace waits for another holder to let go. A lock
// held for less is a command that is just ending, or a process forked
// while the lock was held: a flock belongs to the open file, which a fork
// shares until the child execs and closes it. A real holder of an agent's
// lock (an update command) holds it for seconds to minutes.
const Grace = time.Second

// LockGrace takes an exclusive lock on f, waiting up to Grace (less if
// ctx ends first) for another process to let go. When it does not, the
// error wraps ErrLocked.
func LockGrace(ctx context.Context, f *os.File) error {
	gctx, cancel := context.WithTimeout(ctx, Grace)
	defer cancel()
	return Lock(gctx, f, nil)
}
