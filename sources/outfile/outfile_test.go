package outfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
		if err := WriteFile(dest, []byte(data), Options{}); err != nil {
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
	if err := WriteFile(long, []byte("x"), Options{}); err != nil {
		t.Errorf("WriteFile to a 255-byte name: %v", err)
	}
	if err := WriteFile(filepath.Join(dir, "none", "x"), nil, Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteFile into a missing directory: %v, want ErrNotExist", err)
	}
}

// TestCommitSyncsDirectory checks that Commit fsyncs the destination's
// directory after the rename (so the new name survives a crash), and that
// the options that leave it to the caller skip it.
func TestCommitSyncsDirectory(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
		want bool
	}{
		{"default", Options{}, true},
		{"NoDirSync", Options{NoDirSync: true}, false},
		{"NoSync", Options{NoSync: true}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "f")
			f, err := New(dest, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Discard()
			var synced []string
			f.syncDir = func(d string) error {
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("directory synced before the rename: %v", err)
				}
				synced = append(synced, d)
				return nil
			}
			if err := f.Commit(); err != nil {
				t.Fatal(err)
			}
			if got := len(synced) == 1 && synced[0] == dir; got != tt.want {
				t.Errorf("directory fsyncs %q, want one of %q: %v", synced, dir, tt.want)
			}
		})
	}
}

func TestNoReplace(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "passwd")
	if err := WriteFile(dest, []byte("new"), Options{NoReplace: true}); err != nil {
		t.Fatalf("WriteFile with NoReplace to a new name: %v", err)
	}
	err := WriteFile(dest, []byte("other"), Options{NoReplace: true})
	if !errors.Is(err, os.ErrExist) {
		t.Errorf("WriteFile with NoReplace over an existing file: %v, want ErrExist", err)
	}
	if got, _ := os.ReadFile(dest); string(got) != "new" {
		t.Errorf("destination holds %q after a refused write, want \"new\"", got)
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("directory holds %q, want only passwd", names)
	}
}

func TestMode(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		mode, want os.FileMode
	}{{0, Mode}, {0o600, 0o600}, {0o755, 0o755}} {
		dest := filepath.Join(dir, tt.want.String())
		if err := WriteFile(dest, []byte("x"), Options{Mode: tt.mode}); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(dest)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != tt.want {
			t.Errorf("WriteFile with mode %v: file mode %v, want %v", tt.mode, st.Mode().Perm(), tt.want)
		}
	}
}

func TestCopy(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("content"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(src, 0o750); err != nil {
		t.Fatal(err)
	}
	ino := func(p string) uint64 {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Sys().(*syscall.Stat_t).Ino
	}
	for _, tt := range []struct {
		name     string
		opts     Options
		mode     os.FileMode
		wantLink bool
	}{
		{"source mode", Options{}, 0o750, false},
		{"given mode", Options{Mode: 0o600}, 0o600, false},
		{"hard link", Options{HardLink: true}, 0o750, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(dst, []byte("old content, longer"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := Copy(src, dst, tt.opts); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dst)
			if err != nil || string(got) != "content" {
				t.Errorf("copy holds %q, %v; want \"content\"", got, err)
			}
			st, _ := os.Stat(dst)
			if st.Mode().Perm() != tt.mode {
				t.Errorf("copy mode %v, want %v", st.Mode().Perm(), tt.mode)
			}
			if linked := ino(dst) == ino(src); linked != tt.wantLink {
				t.Errorf("copy is a hard link of the source: %v, want %v", linked, tt.wantLink)
			}
		})
	}
	if names := entries(t, dir); len(names) != 4 {
		t.Errorf("directory holds %q, want the source and three copies only", names)
	}
	if err := Copy(filepath.Join(dir, "missing"), filepath.Join(dir, "x"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Copy of a missing file: %v, want ErrNotExist", err)
	}
	if err := Copy(dir, filepath.Join(dir, "x"), Options{}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Copy of a directory: %v, want a not-a-regular-file error", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed Copy left its destination: %v", err)
	}
}
