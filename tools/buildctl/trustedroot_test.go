package buildctl

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/repo"
)

// TestTrustedRoot: a fresh clone gets development keys the first time an
// image is made, and says so; later builds ship the same root quietly;
// configured release keys that are missing are an error, never replaced.
func TestTrustedRoot(t *testing.T) {
	root := testkit.Copy(t, filepath.Join("..", "project", "testdata", "good"), nil)
	p, err := project.Load(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	a := &app{stdout: io.Discard, stderr: &errb}
	first, err := a.trustedRoot(p)
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(root, ".keys")
	if !strings.Contains(errb.String(), "created development keys in "+keys) {
		t.Errorf("stderr %q does not say that development keys were made", errb.String())
	}
	if onDisk, err := os.ReadFile(filepath.Join(keys, repo.RootFile)); err != nil || !bytes.Equal(onDisk, first) {
		t.Fatalf("root.json in %s: %v", keys, err)
	}
	errb.Reset()
	if again, err := a.trustedRoot(p); err != nil || !bytes.Equal(again, first) || errb.Len() != 0 {
		t.Errorf("second trustedRoot = %v, stderr %q; want the same root, quietly", err, errb.String())
	}

	release := t.TempDir()
	if p.Make.Env == nil {
		p.Make.Env = map[string]string{}
	}
	p.Make.Env[EnvKeysDir] = release
	if _, err := a.trustedRoot(p); !errors.Is(err, project.ErrInvalidInput) || !strings.Contains(err.Error(), "no root metadata at "+filepath.Join(release, repo.RootFile)) {
		t.Errorf("trustedRoot with missing release keys = %v", err)
	}
	if entries, _ := os.ReadDir(release); len(entries) != 0 {
		t.Errorf("keys were created in the configured directory: %v", entries)
	}
	// buildctl release --keys: the images trust the keys named.
	if err := repo.CreateKeys(release, time.Now()); err != nil {
		t.Fatal(err)
	}
	delete(p.Make.Env, EnvKeysDir)
	a.keys = release
	got, err := a.trustedRoot(p)
	if want, _ := os.ReadFile(filepath.Join(release, repo.RootFile)); err != nil || !bytes.Equal(got, want) || bytes.Equal(got, first) {
		t.Errorf("trustedRoot with --keys %s = %v; want that directory's root", release, err)
	}
}
