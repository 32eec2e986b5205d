package initramfs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/gpt"
)

// TestGrowDataPartition runs the first-boot steps that come before the
// DATA mount against a fake sysfs whose disk is an image file 24 MiB
// larger than the image: the backup GPT moves, the DATA entry grows, and
// telling the kernel fails (an image file is no block device), which is
// printed and does not stop the boot. The next boot, with the kernel
// knowing the new size, does nothing more.
func TestGrowDataPartition(t *testing.T) {
	ctx := context.Background()
	const mib = 1 << 20
	_, last := gpt.UsableRange(8*mib/512, 512)
	img := gptImage(t, 8*mib, gpt.Partition{Number: 1, Type: gpt.DeriveGUID(nil, "t"), GUID: gpt.DeriveGUID(nil, "1"), FirstLBA: 2048, LastLBA: 4095},
		dataPart(2, 4096, last))
	img = append(img, make([]byte, 24*mib)...)
	b := fakeTree(t, fakeDisk{"vda", 252, img, 2}).withBootDisk("vda")
	oldBytes := int64(last-4096+1) * 512
	part := filepath.Join(b.dev, "vda2")
	if err := os.WriteFile(part, make([]byte, oldBytes), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := b.resolve(context.Background(), "PARTUUID="+testDataGUID)
	if err != nil || n.Part == nil || !isData(n.Part.GUID) {
		t.Fatalf("resolve DATA = %+v, %v", n, err)
	}
	var out bytes.Buffer
	con := console{w: &out}
	fixBootDisk(ctx, con, b)
	g := growDataPartition(ctx, con, b, n)
	want := []string{
		"petrel-init: moved the backup GPT of /dev/vda from LBA 16383 to LBA 65535, the end of the disk (24 MiB more than the image)",
		"petrel-init: grew DATA (/dev/vda2) from 5.98 MiB to 29.98 MiB",
		// 32 MiB less the first 2 MiB and the 33-block backup table.
		"petrel-init: could not grow DATA (/dev/vda2): resize partition 2 of " + filepath.Join(b.dev, "vda") + " to 31440384 bytes (BLKPG_RESIZE_PARTITION): inappropriate ioctl for device; booting on with its current size",
	}
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("console:\n%s\nwant:\n%s", out.String(), strings.Join(want, "\n"))
	}
	if !g.err || !g.part.Part.Grown() {
		t.Errorf("growth = %+v, want DATA grown and the kernel step failed", g)
	}
	tab, err := gpt.ReadFile(ctx, filepath.Join(b.dev, "vda"))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := tab.Partition(2); tab.BackupMisplaced() || p.LastLBA != tab.LastUsableLBA {
		t.Errorf("table after growth: backup at %d of %d, DATA ends at %d of %d", tab.BackupLBA, tab.LastLBA, p.LastLBA, tab.LastUsableLBA)
	}
	// Next boot: the kernel read the grown table.
	if err := os.Truncate(part, int64(tab.LastUsableLBA-4096+1)*512); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	fixBootDisk(ctx, con, b)
	g = growDataPartition(ctx, con, b, n)
	if out.Len() != 0 || g.err || g.part.Part.Grown() || g.part.Table.Changed() || g.part.KernelResized {
		t.Errorf("second boot: %+v, console %q; want nothing done", g, out.String())
	}
}
