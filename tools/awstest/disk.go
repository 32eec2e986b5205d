package awstest

import (
	"os"
	"path/filepath"
	"testing"
)

// Disk writes a sparse disk image of size bytes named name in a new
// temporary directory, holding data at the given offsets and holes
// elsewhere, and returns its path.
func Disk(t testing.TB, name string, size int64, data map[int64][]byte) string {
	t.Helper()
	return DiskAt(t, filepath.Join(t.TempDir(), name), size, data)
}

// DiskAt is Disk at path.
func DiskAt(t testing.TB, path string, size int64, data map[int64][]byte) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, b := range data {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	return path
}
