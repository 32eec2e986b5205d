package outfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entries returns the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestCommit(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(dest, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Create(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Discard()
	if filepath.Dir(f.Name()) != dir || !strings.HasPrefix(filepath.Base(f.Name()), ".disk.img.") || f.Dest() != dest {
		t.Errorf("temporary file %q for %q, want .disk.img.* beside it", f.Name(), f.Dest())
	}
	if _, err := f.WriteString("new"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); string(got) != "old" {
		t.Errorf("before Commit the destination holds %q, want the old content", got)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Discard() // a no-op after Commit
	got, err := os.ReadFile(dest)
	if err != nil || string(got) != "new" {
		t.Fatalf("after Commit: %q, %v; want \"new\"", got, err)
	}
	st, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != Mode {
		t.Errorf("mode %v, want %v", st.Mode().Perm(), Mode)
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("directory holds %q, want only disk.img", names)
	}
	if err := f.Commit(); err == nil {
		t.Error("second Commit succeeded, want an error")
	}
}

func TestDiscard(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "out.ova")
	f, err := Create(dest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("half"); err != nil {
		t.Fatal(err)
	}
	f.Discard()
	if names := entries(t, dir); len(names) != 0 {
		t.Errorf("after Discard the directory holds %q, want nothing", names)
	}
	if err := f.Commit(); err == nil {
		t.Error("Commit after Discard succeeded, want an error")
	}
}

// TestCommitByName commits a file that an external tool wrote by name.
func TestCommitByName(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "root.erofs")
	f, err := Create(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Discard()
	if err := os.WriteFile(f.Name(), []byte("image"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(dest); err != nil || string(got) != "image" {
		t.Errorf("destination %q, %v; want \"image\"", got, err)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Create(filepath.Join(dir, "none", "x")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "create temporary file for") {
		t.Errorf("Create in a missing directory: %v, want a create error wrapping ErrNotExist", err)
	}
	// The destination is a non-empty directory: the rename fails and the
	// temporary file stays for Discard.
	dest := filepath.Join(dir, "busy")
	if err := os.MkdirAll(filepath.Join(dest, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := Create(dest)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err == nil || !strings.Contains(err.Error(), "into place") {
		t.Errorf("Commit onto a directory: %v, want a rename error", err)
	}
	if _, err := os.Stat(f.Name()); err != nil {
		t.Errorf("temporary file gone after a failed Commit: %v", err)
	}
	f.Discard()
	if _, err := os.Stat(f.Name()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file after Discard: %v, want it removed", err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "state.json")
	for _, data := range []string{"one", "two"} {
		if err := WriteFile(dest, []byte(data)); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(dest); err != nil || string(got) != data {
			t.Errorf("after WriteFile(%q): %q, %v", data, got, err)
		}
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("directory holds %q, want only state.json", names)
	}
	long := filepath.Join(dir, strings.Repeat("n", 255))
	if err := WriteFile(long, []byte("x")); err != nil {
		t.Errorf("WriteFile to a 255-byte name: %v", err)
	}
	if err := WriteFile(filepath.Join(dir, "none", "x"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteFile into a missing directory: %v, want ErrNotExist", err)
	}
}
