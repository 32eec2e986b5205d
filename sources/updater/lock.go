package updater

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/petrel-os/petrel/sources/flock"
)

// lock takes an exclusive flock on path (a directory is locked as it is;
// another path is created as a lock file if missing). It waits while ctx
// lasts, then fails with flock.ErrLocked when another process holds the
// lock. The lock goes with unlock or the process's end,
// so a killed holder never leaves it behind.
func lock(ctx context.Context, path string) (unlock func(), err error) {
	var f *os.File
	if st, serr := os.Stat(path); serr == nil && st.IsDir() {
		f, err = os.Open(path)
	} else if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err = flock.Lock(ctx, f, nil); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
