package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/tools/project"
)

func TestNames(t *testing.T) {
	n := NewNames("/b", "petrel", "metal-dev", "x86_64", "0.1.0", "abcd1234")
	if want := "/b/images/x86_64-metal-dev/0.1.0-abcd1234"; n.Dir != want {
		t.Errorf("Dir = %q, want %q", n.Dir, want)
	}
	if got, want := n.Path(".img"), "/b/images/x86_64-metal-dev/0.1.0-abcd1234/petrel-metal-dev-x86_64-0.1.0-abcd1234.img"; got != want {
		t.Errorf("Path(.img) = %q, want %q", got, want)
	}
}

func TestOSRelease(t *testing.T) {
	got := string(OSRelease{Name: "Petrel OS", ID: "petrel", PrettyName: "Petrel OS", Version: "0.1.0", VariantID: "metal-dev", BuildID: "abcd1234"}.Bytes())
	for _, want := range []string{`NAME="Petrel OS"`, `ID="petrel"`, `VERSION_ID="0.1.0"`, `VARIANT_ID="metal-dev"`,
		`PRETTY_NAME="Petrel OS 0.1.0 (metal-dev)"`, `BUILD_ID="abcd1234"`, `VERSION="0.1.0 (metal-dev)"`} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("os-release lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "HOME_URL") {
		t.Errorf("empty HOME_URL written:\n%s", got)
	}
}

func TestSparseCopy(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	data := make([]byte, 3*4096+100)
	copy(data[4096:], "middle")
	copy(data[3*4096:], "tail")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dst, err := os.Create(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := dst.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	if err := sparseCopy(dst, 8192, src, 1<<20); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := dst.ReadAt(got, 8192); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Error("sparseCopy did not reproduce the source bytes")
	}
	if err := sparseCopy(dst, 0, src, 4096); err == nil || !strings.Contains(err.Error(), "do not fit") {
		t.Errorf("sparseCopy into a too-small partition = %v, want a size error", err)
	}
}

// TestNoKernel checks the error for a closure that installs no kernel.
func TestNoKernel(t *testing.T) {
	root := t.TempDir()
	a := &assembly{in: Inputs{Variant: &project.Variant{Name: "metal-dev", Path: "variants/metal-dev/variant.toml"}}, root: root, work: t.TempDir()}
	var p partitionImages
	err := a.prepareBoot(context.Background(), &p)
	if !errors.Is(err, ErrNoKernel) || !errors.Is(err, project.ErrInvalidInput) || !strings.Contains(err.Error(), "variants/metal-dev/variant.toml") {
		t.Fatalf("prepareBoot without a kernel = %v, want ErrNoKernel naming the variant", err)
	}
}

func TestInventory(t *testing.T) {
	b, err := MarshalInventory(&Inventory{Content: []InventoryEntry{{Name: "kernel", Version: "6.1", Release: "1", License: "GPL-2.0-only"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"License": "GPL-2.0-only"`)) || !bytes.HasPrefix(b, []byte(`{`)) {
		t.Errorf("inventory = %s", b)
	}
}

func TestNoTrustedRoot(t *testing.T) {
	_, err := Make(context.Background(), Inputs{Variant: &project.Variant{Name: "metal-dev", Path: "variants/metal-dev/variant.toml"}})
	if !errors.Is(err, project.ErrInvalidInput) || !strings.Contains(err.Error(), "no trusted root metadata for the image's updates") {
		t.Fatalf("Make without a trusted root = %v", err)
	}
}

// TestSELinuxParams: every image boots SELinux enforcing; only the
// selinux-permissive image feature makes it permissive.
func TestSELinuxParams(t *testing.T) {
	for _, tt := range []struct {
		features map[string]bool
		want     string
	}{
		{nil, "security=selinux enforcing=1"},
		{map[string]bool{"selinux-permissive": false}, "security=selinux enforcing=1"},
		{map[string]bool{"selinux-permissive": true}, "security=selinux enforcing=0"},
	} {
		v := &project.Variant{ImageFeatures: tt.features}
		if got := strings.Join(selinuxParams(v), " "); got != tt.want {
			t.Errorf("features %v: %q, want %q", tt.features, got, tt.want)
		}
	}
}
