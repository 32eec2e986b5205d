package multicall

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestFind(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	self := filepath.Join(dir, "petrel")
	if err := os.WriteFile(self, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sundog", "frobnicate"} {
		if err := os.Symlink("petrel", filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(dir, "other", "sundog")
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte("another binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	programs := Programs(func(name string) (Program, bool) {
		if name != "sundog" {
			return nil, false
		}
		return func(context.Context, []string, io.Writer, io.Writer) int { return 7 }, true
	})
	for _, tc := range []struct {
		name, self, path string
		programs         Programs
		found            bool
	}{
		{"a link to this binary named after a program", self, filepath.Join(dir, "sundog"), programs, true},
		{"the same name, another file", self, other, programs, false},
		{"a link to this binary named after no program", self, filepath.Join(dir, "frobnicate"), programs, false},
		{"a missing file", self, filepath.Join(dir, "missing", "sundog"), programs, false},
		{"no programs", self, filepath.Join(dir, "sundog"), nil, false},
		{"no executable", "", filepath.Join(dir, "sundog"), programs, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run, ok := tc.programs.Find(tc.self, tc.path)
			if ok != tc.found || (ok && run(context.Background(), nil, io.Discard, io.Discard) != 7) {
				t.Fatalf("Find(%q, %q) found %v, want %v", tc.self, tc.path, ok, tc.found)
			}
		})
	}
}
