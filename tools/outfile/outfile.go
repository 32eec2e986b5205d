package outfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Mode is the permission of every committed file.
const Mode os.FileMode = 0o644

// File is an open temporary file that Commit renames to its destination.
// Write to it through the embedded *os.File.
type File struct {
	*os.File
	dest string
	done bool // committed or discarded
}

// maxPrefix bounds the part of the temporary file's name taken from the
// destination, so that a destination name near the 255-byte limit still
// gets a temporary file.
const maxPrefix = 200

// Create creates the temporary file ".<base of dest>.<random>" in the
// directory of dest, which must exist. A long base is cut short.
func Create(dest string) (*File, error) {
	base := filepath.Base(dest)
	if len(base) > maxPrefix {
		base = base[:maxPrefix]
	}
	f, err := os.CreateTemp(filepath.Dir(dest), "."+base+".*")
	if err != nil {
		return nil, fmt.Errorf("create temporary file for %q: %w", dest, err)
	}
	return &File{File: f, dest: dest}, nil
}

// Dest returns the path Commit renames the file to.
func (f *File) Dest() string { return f.dest }

// Commit sets the temporary file's mode to Mode, syncs it to disk, closes
// it and renames it to the destination. After an error the temporary file
// is still there for Discard to remove.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("commit %q: already committed or discarded", f.dest)
	}
	if err := f.Chmod(Mode); err != nil {
		return fmt.Errorf("chmod %q: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %q: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %q: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), f.dest); err != nil {
		return fmt.Errorf("rename %q into place: %w", f.dest, err)
	}
	f.done = true
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
func WriteFile(dest string, data []byte) (err error) {
	f, err := Create(dest)
	if err != nil {
		return err
	}
	defer f.Discard()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %q: %w", f.Name(), err)
	}
	return f.Commit()
}
