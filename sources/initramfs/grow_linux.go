package initramfs

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/growth"
)

// First-boot growth (sources/growth) runs here because /init has read
// every GPT and mounts DATA before systemd starts. None of it is fatal: a
// failure is printed and the boot goes on with the sizes the disk has;
// the next boot tries again.

// isData reports whether a partition GUID is one of DATA's fixed GUIDs.
func isData(g gpt.GUID) bool {
	return g == disklayout.DataPreferredGUID || g == disklayout.DataFallbackGUID
}

// mib formats a byte count in MiB: whole, or with two decimals.
func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
}

// fixBootDisk repairs the boot disk's GPT (one usable copy) and moves its
// backup to the end of a disk larger than the image.
func fixBootDisk(ctx context.Context, con console, bd blockDevs) {
	disk := "/dev/" + bd.bootDisk
	fix, err := growth.FixDisk(ctx, filepath.Join(bd.dev, bd.bootDisk))
	printTableFix(con, disk, fix)
	if err != nil {
		con.printf("could not fix the partition table of %s: %v; booting on", disk, err)
	}
}

func printTableFix(con console, disk string, fix growth.TableFix) {
	if fix.Repaired != "" {
		other := "primary"
		if fix.Repaired == "primary" {
			other = "backup"
		}
		con.printf("repaired the %s GPT of %s from the %s copy (%v)", fix.Repaired, disk, other, fix.Problem)
	}
	if fix.BackupFrom != fix.BackupTo {
		con.printf("moved the backup GPT of %s from LBA %d to LBA %d, the end of the disk (%s more than the image)",
			disk, fix.BackupFrom, fix.BackupTo, mib(int64(fix.BackupTo-fix.BackupFrom)*int64(fix.BlockSize)))
	}
}

// dataGrowth is the growth of one DATA partition, begun before its
// mount (growDataPartition) and finished after it (growDataFS).
type dataGrowth struct {
	dev  string // partition node as named on the console, e.g. /dev/vda13
	src  string // partition node to open
	part growth.PartReport
	err  bool // a step failed and was reported
}

// growDataPartition grows the partition n (DATA) to the end of its disk
// and tells the kernel, before it is mounted.
func growDataPartition(ctx context.Context, con console, bd blockDevs, n node) *dataGrowth {
	g := &dataGrowth{dev: n.Path, src: filepath.Join(bd.dev, strings.TrimPrefix(n.Path, "/dev/"))}
	disk := "/dev/" + n.Disk
	r, err := growth.GrowPartition(ctx, filepath.Join(bd.dev, n.Disk), g.src, n.Part.GUID)
	g.part = r
	printTableFix(con, disk, r.Table)
	switch {
	case r.Part.Grown():
		con.printf("grew DATA (%s) from %s to %s", g.dev, mib(r.Part.OldBytes()), mib(r.Part.NewBytes()))
	case r.KernelResized:
		con.printf("told the kernel that DATA (%s) is %s", g.dev, mib(r.Part.NewBytes()))
	}
	if err != nil {
		con.printf("could not grow DATA (%s): %v; booting on with its current size", g.dev, err)
		g.err = true
	}
	return g
}

// growDataFS grows the file system of DATA, mounted at target (named
// mountPoint on the console), to its partition.
func (g *dataGrowth) growDataFS(ctx context.Context, con console, target, mountPoint string) {
	fs, err := growth.GrowFileSystem(ctx, g.src, target)
	switch {
	case err != nil:
		con.printf("could not grow the file system on %s (%s): %v; booting on with its current size", mountPoint, g.dev, err)
	case fs.Grown():
		con.printf("grew the file system on %s (%s) from %s to %s", mountPoint, g.dev, mib(fs.Before.Bytes()), mib(fs.After.Bytes()))
	case !g.err && !g.part.Table.Changed() && !g.part.Part.Grown() && !g.part.KernelResized:
		con.printf("nothing to grow: DATA (%s, %s) ends at the end of its disk and its file system on %s (%s) fills it",
			g.dev, mib(fs.PartitionBytes), mountPoint, mib(fs.After.Bytes()))
	}
}
