package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/tools/buildctl"
	"github.com/petrel-os/petrel/tools/image"
)

// extract copies length bytes at offset of img into a new sparse file.
func extract(t *testing.T, img string, offset, length int64) string {
	t.Helper()
	in, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := filepath.Join(t.TempDir(), fmt.Sprintf("part-%d.img", offset))
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(length); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	zero := make([]byte, 1<<20)
	for pos := int64(0); pos < length; pos += int64(len(buf)) {
		n, err := in.ReadAt(buf[:min(int64(len(buf)), length-pos)], offset+pos)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], zero[:n]) {
			if _, err := f.WriteAt(buf[:n], pos); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

func runOK(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestImageChecks checks the built image with the real tools as oracles:
// the partition table against the plan, every filesystem, and dm-verity.
func TestImageChecks(t *testing.T) {
	img, rootHash := builtImage(t)
	if out := runOK(t, "sgdisk", "-v", img); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v: %s", out)
	}
	var sf struct {
		PartitionTable struct {
			Partitions []struct {
				Node, Type, UUID, Name, Attrs string
				Start, Size                   int64
			}
		}
	}
	if err := json.Unmarshal([]byte(runOK(t, "sfdisk", "--json", img)), &sf); err != nil {
		t.Fatal(err)
	}
	plan, err := disklayout.Plan(disklayout.Options{OSImageSizeGiB: 2, DataImageSizeGiB: 1, Unified: true, InPlaceUpdates: true, LabelPrefix: "PETREL"})
	if err != nil {
		t.Fatal(err)
	}
	got := sf.PartitionTable.Partitions
	if len(got) != len(plan.OSDisk.Partitions) {
		t.Fatalf("sfdisk lists %d partitions, the plan has %d", len(got), len(plan.OSDisk.Partitions))
	}
	for i, want := range plan.OSDisk.Partitions {
		g := got[i]
		if g.Name != want.Label || !strings.EqualFold(g.Type, want.Type.String()) || g.Start != want.OffsetMiB*2048 || g.Size != want.SizeMiB*2048 {
			t.Errorf("partition %d = %s %s start %d size %d; plan: %s %s start %d size %d", i+1, g.Name, g.Type, g.Start, g.Size,
				want.Label, want.Type, want.OffsetMiB*2048, want.SizeMiB*2048)
		}
		if want.Key == disklayout.KeyBootA && g.Attrs != "GUID:48,56" {
			t.Errorf("BOOT-A attributes = %q, want GUID:48,56 (priority 1, successful)", g.Attrs)
		}
	}
	part := func(key string) string {
		p, _ := plan.OSDisk.Partition(key)
		return extract(t, img, p.OffsetBytes(), p.SizeBytes())
	}
	root, hash := part(disklayout.KeyRootA), part(disklayout.KeyHashA)
	runOK(t, "fsck.erofs", root)
	runOK(t, "veritysetup", "verify", root, hash, rootHash)
	for _, k := range []string{disklayout.KeyBootA, disklayout.KeyPrivate, disklayout.KeyDataA} {
		runOK(t, "e2fsck", "-fn", part(k))
	}
	runOK(t, "fsck.vfat", "-n", part(disklayout.KeyEFIA))
	// One flipped byte of the root must fail verification.
	f, err := os.OpenFile(root, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0x5a}, 8192+17); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command("veritysetup", "verify", root, hash, rootHash).CombinedOutput(); err == nil {
		t.Errorf("veritysetup verify accepted a corrupted root:\n%s", out)
	}
}

func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func buildctlOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{"-C", projectRoot(t)}, args...)
	if code := buildctl.Main(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("buildctl %s = %d\n%s\n%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	return out.String()
}

// TestReproducibleImage assembles the default variant twice from the same
// commit: the raw image and the update images must be byte-identical.
func TestReproducibleImage(t *testing.T) {
	builtImage(t)
	digests := func() map[string]string {
		dir, err := image.Latest(filepath.Join(projectRoot(t), "build"), variant, "x86_64")
		if err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		m := map[string]string{}
		for _, f := range files {
			m[filepath.Base(f)] = fileSHA256(t, f)
		}
		return m
	}
	first := digests()
	buildctlOK(t, "--variant", variant, "make")
	second := digests()
	if len(first) < 5 {
		t.Fatalf("image directory holds only %v", first)
	}
	for name, d := range first {
		if second[name] != d {
			t.Errorf("%s differs between two builds of the same commit", name)
		}
	}
}

// TestVMwareImage builds the vmware-dev variant and its OVA: qemu-img must
// accept the streamOptimized VMDK, converting it back must give the raw
// image, and the OVA must hold the OVF first, then the manifest, then the
// disk.
func TestVMwareImage(t *testing.T) {
	builtImage(t) // packages are built; this assembles another variant
	buildctlOK(t, "--variant", "vmware-dev", "make")
	ovaPath := strings.TrimSpace(buildctlOK(t, "--variant", "vmware-dev", "ova"))
	dir, err := image.Latest(filepath.Join(projectRoot(t), "build"), "vmware-dev", "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := image.FindDiskImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	vmdk := strings.TrimSuffix(raw, ".img") + ".vmdk"
	info := runOK(t, "qemu-img", "info", "--output=json", vmdk)
	if !strings.Contains(info, `"format": "vmdk"`) || !strings.Contains(info, `"create-type": "streamOptimized"`) {
		t.Errorf("qemu-img info: %s", info)
	}
	runOK(t, "qemu-img", "check", vmdk)
	back := filepath.Join(t.TempDir(), "back.img")
	runOK(t, "qemu-img", "convert", "-f", "vmdk", "-O", "raw", vmdk, back)
	if a, b := fileSHA256(t, raw), fileSHA256(t, back); a != b {
		t.Errorf("qemu-img convert of our vmdk back to raw differs from the raw image")
	}
	f, err := os.Open(ovaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if len(names) != 3 || !strings.HasSuffix(names[0], ".ovf") || !strings.HasSuffix(names[1], ".mf") || names[2] != filepath.Base(vmdk) {
		t.Errorf("OVA entries = %v, want the .ovf, the .mf, then %s", names, filepath.Base(vmdk))
	}
}
