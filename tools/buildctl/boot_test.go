package buildctl_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/buildctl"
)

func TestBootBadInput(t *testing.T) {
	dir := t.TempDir()
	notImage := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notImage, bytes.Repeat([]byte("hello "), 200), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"boot", filepath.Join(dir, "nope.img")}, "no such file"},
		{"not an image", []string{"boot", notImage}, "is not a disk image"},
		{"variant not built", []string{"-C", testkit.Copy(t, fixtureRoot, nil), "boot", "--variant", "vmware-dev"}, "variant vmware-dev was not built for x86_64"},
		{"bad --runs", []string{"boot", notImage, "--measure", "--runs", "0"}, "--runs 0: want at least 1"},
		{"--api-socket with --measure", []string{"boot", notImage, "--measure", "--api-socket", filepath.Join(dir, "api.sock")}, "--api-socket and --measure do not go together"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := buildctl.Main(context.Background(), tt.args, &out, &errb)
			if code != 2 || !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("buildctl %v = %d, stderr %q; want exit 2 and %q", tt.args, code, errb.String(), tt.want)
			}
		})
	}
}
