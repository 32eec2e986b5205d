package datastore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Permissions of every file and directory of a datastore: settings may
// hold secrets, and only root (the API server and the tools that run
// before it) reads them.
const (
	fileMode os.FileMode = 0o600
	dirMode  os.FileMode = 0o700
)

// tempPrefix starts every temporary file name. Encoded segments never start
// with '.', so loaders skip these names and Open removes leftovers.
const tempPrefix = ".tmp-"

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux.
	return hex.EncodeToString(b)
}

// syncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %q: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %q: %w", dir, err)
	}
	return nil
}

// mkdirAll creates dir and its missing parents below root. With sync, the
// parent of every created directory is fsynced so the new entry is durable.
func mkdirAll(root, dir string, sync bool) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("create directory %q: outside %q", dir, root)
	}
	cur := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "." || part == "" {
			continue
		}
		next := filepath.Join(cur, part)
		err := os.Mkdir(next, dirMode)
		switch {
		case err == nil:
			if sync {
				if err := syncDir(cur); err != nil {
					return err
				}
			}
		case errors.Is(err, os.ErrExist):
		default:
			return fmt.Errorf("create directory %q: %w", next, err)
		}
		cur = next
	}
	return nil
}

// writeTemp writes data into a new temp file in dir, fsyncing it if sync
// is set, and returns its path.
func writeTemp(dir string, data []byte, sync bool) (string, error) {
	tmp := filepath.Join(dir, tempPrefix+randomHex(8))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return "", fmt.Errorf("create temp file in %q: %w", dir, err)
	}
	_, werr := f.Write(data)
	if werr == nil && sync {
		werr = f.Sync()
	}
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write temp file %q: %w", tmp, werr)
	}
	return tmp, nil
}

// writeAtomic replaces path with data: temp file in the same directory,
// write, fsync, rename, fsync directory (the syncs only when sync is set).
// Readers see either the old or the new content, never a torn one.
func writeAtomic(root, path string, data []byte, sync bool) error {
	dir := filepath.Dir(path)
	if err := mkdirAll(root, dir, sync); err != nil {
		return err
	}
	tmp, err := writeTemp(dir, data, sync)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename %q to %q: %w", tmp, path, err)
	}
	if sync {
		return syncDir(dir)
	}
	return nil
}

// removeFile removes the file path and then every parent up to (not
// including) stop that became empty, like upstream. A missing file is not
// an error, nor is a directory or a file in place of a parent directory
// (no file can be at path then).
func removeFile(stop, path string, sync bool) error {
	if err := syscall.Unlink(path); err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) {
			return nil
		}
		return fmt.Errorf("remove %q: %w", path, err)
	}
	dir := filepath.Dir(path)
	last := dir
	for dir != stop && strings.HasPrefix(dir, stop+string(filepath.Separator)) {
		if err := os.Remove(dir); err != nil {
			if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
				break
			}
			return fmt.Errorf("remove directory %q: %w", dir, err)
		}
		dir = filepath.Dir(dir)
		last = dir
	}
	if sync {
		return syncDir(last)
	}
	return nil
}

// tighten removes the group and other permissions of path, which has
// mode, if it has any: stores made by older versions have 0644 files and
// 0755 directories.
func tighten(path string, mode os.FileMode) error {
	if mode.Perm()&0o077 == 0 || mode&os.ModeSymlink != 0 {
		return nil
	}
	if err := os.Chmod(path, mode.Perm()&^0o077); err != nil {
		return fmt.Errorf("restrict permissions of %q: %w", path, err)
	}
	return nil
}
