package outfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mode is the permission of a committed file when Options.Mode is zero.
const Mode os.FileMode = 0o644

// Options adjust how a file is committed. The zero value is the safe
// default: mode 0644, the file and its directory fsynced.
type Options struct {
	// Mode is the committed file's permission (default Mode; Copy:
	// the source's permission bits).
	Mode os.FileMode
	// NoDirSync leaves the directory fsync to the caller, who writes
	// several files into one directory and fsyncs it once (the
	// datastore's checkpoint). The file itself is still fsynced.
	NoDirSync bool
	// NoSync skips both fsyncs: for scratch trees that nothing reads
	// after a crash, such as the host's tmpfs /etc.
	NoSync bool
	// NoReplace makes Commit fail with an error matching os.ErrExist
	// when the destination exists, instead of replacing it.
	NoReplace bool
	// HardLink makes Copy link the destination to the source when the
	// file system allows it (the source must never change in place).
	HardLink bool
}

// File is an open temporary file that Commit renames to its destination.
// Write to it through the embedded *os.File. A File is not safe for
// concurrent use.
type File struct {
	*os.File
	dest string
	opts Options
	done bool // committed or discarded
	// syncDir fsyncs a directory; a field so tests can see the call.
	syncDir func(dir string) error
}

// TempPrefix starts the name of every temporary file, so that readers of
// a directory can skip them and cleaners recognise leftovers of a crash:
// ".<base of the destination>.<random>".
const TempPrefix = "."

// maxPrefix bounds the part of the temporary file's name taken from the
// destination, so that a destination name near the 255-byte limit still
// gets a temporary file.
const maxPrefix = 200

// Create creates the temporary file for dest with the default Options.
func Create(dest string) (*File, error) { return New(dest, Options{}) }

// New creates the temporary file ".<base of dest>.<random>" in the
// directory of dest, which must exist. A long base is cut short.
func New(dest string, opts Options) (*File, error) {
	base := filepath.Base(dest)
	if len(base) > maxPrefix {
		base = base[:maxPrefix]
	}
	f, err := os.CreateTemp(filepath.Dir(dest), TempPrefix+base+".*")
	if err != nil {
		return nil, fmt.Errorf("create temporary file for %q: %w", dest, err)
	}
	return &File{File: f, dest: dest, opts: opts, syncDir: SyncDir}, nil
}

// Dest returns the path Commit renames the file to.
func (f *File) Dest() string { return f.dest }

// Commit sets the temporary file's mode, fsyncs it, closes it, renames it
// to the destination and fsyncs the destination's directory (as Options
// say). After an error before the rename the temporary file is still
// there for Discard to remove; after the rename the destination has its
// new content, even if the directory fsync then failed.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("commit %q: already committed or discarded", f.dest)
	}
	mode := f.opts.Mode
	if mode == 0 {
		mode = Mode
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %q: %w", f.Name(), err)
	}
	if !f.opts.NoSync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %q: %w", f.Name(), err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %q: %w", f.Name(), err)
	}
	if err := f.rename(); err != nil {
		return fmt.Errorf("rename %q into place: %w", f.dest, err)
	}
	f.done = true
	if f.opts.NoSync || f.opts.NoDirSync {
		return nil
	}
	return f.syncDir(filepath.Dir(f.dest))
}

func (f *File) rename() error {
	if !f.opts.NoReplace {
		return os.Rename(f.Name(), f.dest)
	}
	err := unix.Renameat2(unix.AT_FDCWD, f.Name(), unix.AT_FDCWD, f.dest, unix.RENAME_NOREPLACE)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: f.Name(), New: f.dest, Err: err}
	}
	return nil
}

// Discard closes and removes the temporary file unless Commit succeeded;
// it does nothing after a successful Commit, so it can always be deferred.
func (f *File) Discard() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.Name())
}

// WriteFile writes data to dest through a committed temporary file.
func WriteFile(dest string, data []byte, opts Options) error {
	f, err := New(dest, opts)
	if err != nil {
		return err
	}
	defer f.Discard()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %q: %w", f.Name(), err)
	}
	return f.Commit()
}

// Copy copies the regular file src to dst through a committed temporary
// file, so dst appears whole or not at all. The copy gets opts.Mode, or
// src's permission bits when it is zero. With opts.HardLink, dst becomes
// a hard link to src where the file system allows it.
func Copy(src, dst string, opts Options) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %q: %w", src, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("copy %q: %w", src, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("copy %q: not a regular file", src)
	}
	if opts.HardLink && !opts.NoReplace {
		if err := linkInto(src, dst); err == nil {
			return nil
		}
	}
	if opts.Mode == 0 {
		opts.Mode = st.Mode().Perm()
	}
	f, err := New(dst, opts)
	if err != nil {
		return err
	}
	defer f.Discard()
	if _, err := io.Copy(f, in); err != nil {
		return fmt.Errorf("copy %q to %q: %w", src, dst, err)
	}
	return f.Commit()
}

// linkInto links dst to src, replacing dst atomically: the link is made
// under a temporary name and renamed over dst.
func linkInto(src, dst string) error {
	tmp := filepath.Join(filepath.Dir(dst), TempPrefix+strings.TrimPrefix(filepath.Base(dst), ".")+".link")
	os.Remove(tmp)
	if err := os.Link(src, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// SyncDir fsyncs a directory so that entries created, renamed or removed
// in it are durable.
func SyncDir(dir string) error {
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
