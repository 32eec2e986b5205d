package esp_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/fat"
	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/esp"
	"github.com/petrel-os/petrel/tools/fsimage"
)

// TestAssembleOSDisk is the worked example for the image assembler: plan,
// partition table, ESP, BOOT-A and PRIVATE written in place into one
// sparse file, then checked with sgdisk, fsck.vfat, e2fsck and the
// readers the on-host agents use.
func TestAssembleOSDisk(t *testing.T) {
	testkit.Tool(t, "mkfs.ext4")
	ctx := context.Background()
	l, err := disklayout.Plan(disklayout.Options{OSImageSizeGiB: 2, DataImageSizeGiB: 1, InPlaceUpdates: true, LabelPrefix: "PETREL"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "os.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(l.OSDisk.SizeBytes); err != nil {
		t.Fatal(err)
	}
	table := l.OSDisk.GPT([]byte("build-seed"))
	if err := gpt.Write(ctx, f, l.OSDisk.SizeBytes, table); err != nil {
		t.Fatal(err)
	}
	efi, _ := l.OSDisk.Partition(disklayout.KeyEFIA)
	env := []byte("# GRUB Environment Block\nboot_slot=A\n")
	env = append(env, []byte(strings.Repeat("#", 512-len(env)))...)
	res, err := esp.WriteWithOptions(ctx, f, efi.OffsetBytes(), efi.SizeBytes(), []esp.File{
		{Path: "EFI/BOOT/BOOTX64.EFI", Data: []byte("not really a PE binary")},
		{Path: "EFI/BOOT/grubenv", Data: env},
	}, esp.Options{Label: "EFI-SYSTEM", Epoch: 1700000000})
	if err != nil {
		t.Fatal(err)
	}
	boot, _ := l.OSDisk.Partition(disklayout.KeyBootA)
	priv, _ := l.OSDisk.Partition(disklayout.KeyPrivate)
	src := filepath.Join(dir, "boot")
	if err := os.MkdirAll(filepath.Join(src, "grub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "grub", "grub.cfg"), []byte("set timeout=0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	uuid := gpt.DeriveGUID([]byte("build-seed"), "fs/BOOT-A").String()
	if err := fsimage.Ext4(ctx, src, img, boot.SizeBytes(), fsimage.Ext4Options{Label: "BOOT-A", UUID: uuid, Epoch: 1700000000, ReadOnly: true, InPlace: true, Offset: boot.OffsetBytes()}); err != nil {
		t.Fatal(err)
	}
	uuid = gpt.DeriveGUID([]byte("build-seed"), "fs/PRIVATE").String()
	if err := fsimage.Ext4Empty(ctx, img, priv.SizeBytes(), fsimage.Ext4Options{Label: "PRIVATE", UUID: uuid, Epoch: 1700000000, InodeRatio: 4096, InodeSize: 256, InPlace: true, Offset: priv.OffsetBytes()}); err != nil {
		t.Fatal(err)
	}
	// Rewriting the table (as the flipper does) leaves contents alone.
	back, err := gpt.Read(ctx, f, l.OSDisk.SizeBytes)
	if err != nil {
		t.Fatalf("read GPT after assembly: %v", err)
	}
	p, _ := back.Partition(boot.Number)
	bootB, _ := l.OSDisk.Partition(disklayout.KeyBootB)
	pb, _ := back.Partition(bootB.Number)
	for i := range back.Partitions {
		switch back.Partitions[i].Number {
		case p.Number:
			back.Partitions[i].Attributes, _ = disklayout.EncodePrio(p.Attributes, disklayout.Prio{Priority: 1, Successful: true})
		case pb.Number:
			back.Partitions[i].Attributes, _ = disklayout.EncodePrio(pb.Attributes, disklayout.Prio{Priority: 2, TriesLeft: 1})
		}
	}
	if err := gpt.Write(ctx, f, l.OSDisk.SizeBytes, back); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}

	if out := testkit.Run(t, "sgdisk", "-v", img); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	if out := testkit.Run(t, "sgdisk", "-i", fmt.Sprint(bootB.Number), img); !strings.Contains(out, "Attribute flags: 0012000000000000") {
		t.Errorf("sgdisk -i %d:\n%s", bootB.Number, out)
	}
	for _, part := range []disklayout.Partition{boot, priv} {
		testkit.Run(t, "e2fsck", "-fn", fmt.Sprintf("%s?offset=%d", img, part.OffsetBytes()))
	}
	off, size, err := fat.FindFile(f, efi.OffsetBytes(), "EFI/BOOT/grubenv")
	placed, _ := res.File("EFI/BOOT/grubenv")
	if err != nil || off != placed.Offset || size != 512 {
		t.Errorf("FindFile(grubenv) = %d, %d, %v; Result says %d", off, size, err, placed.Offset)
	}
	espCopy := filepath.Join(dir, "esp.img")
	buf := make([]byte, efi.SizeBytes())
	if _, err := f.ReadAt(buf, efi.OffsetBytes()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(espCopy, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, "fsck.vfat", "-n", espCopy)
}
