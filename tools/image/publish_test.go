package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

// TestPublish publishes builds of one version twice and then fails to
// publish a third: "latest" must always lead to a complete build, and a
// failed publication must leave the earlier build in place.
func TestPublish(t *testing.T) {
	variantDir := t.TempDir()
	dir := filepath.Join(variantDir, "0.1.0-abcd1234")
	link := filepath.Join(variantDir, "latest")
	publish := func(stage string) error {
		if err := publishDir(stage, dir); err != nil {
			return err
		}
		return replaceLink(filepath.Base(dir), link)
	}
	latest := func(t *testing.T) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(link, "image.img"))
		if err != nil {
			t.Fatalf("latest does not lead to a complete build: %v", err)
		}
		return string(b)
	}
	stage := func(content string) string {
		return filepath.Join(testkit.Tree(t, map[string]string{"out/image.img": content, "out/update.zst": content}), "out")
	}

	if err := publish(stage("first")); err != nil {
		t.Fatal(err)
	}
	if got := latest(t); got != "first" {
		t.Fatalf("latest holds %q, want first", got)
	}
	// The same commit built again replaces the directory.
	second := filepath.Join(variantDir, ".work-2", "out")
	testkit.WriteFiles(t, variantDir, map[string]string{".work-2/out/image.img": "second"})
	if err := publish(second); err != nil {
		t.Fatal(err)
	}
	if got := latest(t); got != "second" {
		t.Errorf("latest holds %q after a rebuild, want second", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "update.zst")); err == nil {
		t.Errorf("a file of the earlier build survived the rebuild")
	}
	if _, err := os.Stat(second); err == nil {
		t.Errorf("the stage directory, which held the earlier build, was not removed")
	}

	for _, tt := range []struct{ name, stage, want string }{
		{"missing stage", filepath.Join(variantDir, "none"), "no such file"},
		// A stage on another file system cannot be renamed into place.
		{"stage on another file system", func() string {
			d, err := os.MkdirTemp("/dev/shm", "petrel-stage-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(d) })
			testkit.WriteFiles(t, d, map[string]string{"image.img": "third"})
			return d
		}(), "cross-device"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := publish(tt.stage)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("publish = %v, want an error with %q", err, tt.want)
			}
			if got := latest(t); got != "second" {
				t.Errorf("latest holds %q after a failed publication, want the earlier build", got)
			}
			entries, _ := os.ReadDir(variantDir)
			for _, e := range entries {
				if strings.Contains(e.Name(), ".old") || strings.Contains(e.Name(), ".tmp") {
					t.Errorf("%s left behind", e.Name())
				}
			}
		})
	}
}
