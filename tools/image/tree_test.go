package image

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestTreeModesIgnoreUmask builds the files the image build adds to its
// trees under umask 0077: their modes must be 0755 and 0644 all the same,
// or two builds of one commit by different users would differ.
func TestTreeModesIgnoreUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	root := filepath.Join(t.TempDir(), "root")
	if err := mkdirTree(root); err != nil {
		t.Fatal(err)
	}
	if err := finishRoot(root, OSRelease{Name: "Petrel OS", ID: "petrel", Version: "0.1.0", VariantID: "metal-dev", BuildID: "1"}, []byte("{}\n"), []byte(`{"signed":{}}`)); err != nil {
		t.Fatal(err)
	}
	if err := writeTreeFile(filepath.Join(root, "boot", "grub", "grub.cfg"), []byte("x\n")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		".":                  0o755 | os.ModeDir,
		"usr":                0o755 | os.ModeDir,
		"usr/share/petrel":   0o755 | os.ModeDir,
		"usr/lib/os-release": 0o644,
		"usr/share/petrel/application-inventory.json": 0o644,
		"usr/share/petrel/updates":                    0o755 | os.ModeDir,
		"usr/share/petrel/updates/root.json":          0o644,
		"boot/grub":                                   0o755 | os.ModeDir,
		"boot/grub/grub.cfg":                          0o644,
	} {
		st, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if st.Mode() != want {
			t.Errorf("%s has mode %v under umask 0077, want %v", p, st.Mode(), want)
		}
	}
}
