package updater

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/petrel-os/petrel/sources/flock"
)

// lock takes an exclusive flock on path (a directory is locked as it is;
// another path is created as a lock file if missing). With wait it waits
// while ctx lasts, else it fails at once with flock.ErrLocked when another
// process holds the lock. The lock goes with unlock or the process's end,
// so a killed holder never leaves it behind.
func lock(ctx context.Context, path string, wait bool) (unlock func(), err error) {
	var f *os.File
	if st, serr := os.Stat(path); serr == nil && st.IsDir() {
		f, err = os.Open(path)
	} else if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if wait {
		err = flock.Lock(ctx, f, nil)
	} else {
		err = flock.TryLock(f)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
