package datastore

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// wantModes checks every file and directory under root (root included):
// files 0600, directories 0700. Symbolic links have no mode of their own.
func wantModes(t *testing.T, root string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, info.Mode().Perm(), want)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPermissions: a new store, and everything written into it, is 0600
// (files) and 0700 (directories), and Open restricts a store whose files
// an older version made readable by all.
func TestPermissions(t *testing.T) {
	t.Parallel()
	base := filepath.Join(t.TempDir(), "datastore")
	cur, err := Create(base, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), cur)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.SetMany(ctx, []KeyValue{kv("settings.a.b", "1"), kv(`settings."c.d".e`, "2")}, Live()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMetadata(ctx, MustKey(MetaKey, "m"), MustKey(DataKey, "settings.a"), []byte(`"x"`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMany(ctx, []KeyValue{kv("settings.p.q", "3")}, Pending("tx")); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	// The versioned directory, .lock, .wal, live/ with 3 directories and
	// 3 files, pending/ with tx/ and 2 directories and 1 file, and base.
	if n := wantModes(t, base); n != 16 {
		t.Errorf("checked %d files and directories, want 16", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// As an older version left it.
	err = filepath.WalkDir(s.Dir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(path, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, cur)
	wantModes(t, s2.Dir())
}
