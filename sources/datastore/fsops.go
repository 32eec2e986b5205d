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

	"github.com/petrel-os/petrel/sources/outfile"
)

// Permissions of every file and directory of a datastore: settings may
// hold secrets, and only root (the API server and the tools that run
// before it) reads them.
const (
	fileMode os.FileMode = 0o600
	dirMode  os.FileMode = 0o700
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux.
	return hex.EncodeToString(b)
}

// syncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func syncDir(dir string) error { return outfile.SyncDir(dir) }

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

// writeAtomic replaces path with data through outfile (temporary file in
// the same directory, write, fsync, rename, fsync the directory, as opts
// say), so readers see the old or the new content, never a torn one. It
// creates the missing directories below root first, fsyncing the parent
// of each when opts sync the directory.
func writeAtomic(root, path string, data []byte, opts outfile.Options) error {
	if err := mkdirAll(root, filepath.Dir(path), !opts.NoSync && !opts.NoDirSync); err != nil {
		return err
	}
	opts.Mode = fileMode
	return outfile.WriteFile(path, data, opts)
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
