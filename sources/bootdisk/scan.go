package bootdisk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/petrel-os/petrel/sources/gpt"
)

// Disk is one whole disk that Scan found.
type Disk struct {
	// Path is the device node: devDir joined with the sysfs name.
	Path string
	// Table is the disk's partition table; nil when Err is set.
	Table *gpt.Table
	// Err says why the GPT could not be read (no GPT, unreadable size,
	// missing device node); it names Path.
	Err error
}

// Scan lists the whole disks in sysBlockDir (a sysfs block class
// directory such as /sys/class/block), in name order, and reads the GPT of
// each through its device node in devDir. Partitions (entries with a
// "partition" file) and virtual devices are left out. A disk whose GPT
// cannot be read is returned with Err set; the error return is for a
// sysBlockDir that cannot be listed or a cancelled ctx.
func Scan(ctx context.Context, sysBlockDir, devDir string) ([]Disk, error) {
	entries, err := os.ReadDir(sysBlockDir)
	if err != nil {
		return nil, fmt.Errorf("list block devices in %s: %w", sysBlockDir, err)
	}
	var disks []Disk
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := e.Name()
		if Virtual(name) {
			continue
		}
		if _, err := os.Stat(filepath.Join(sysBlockDir, name, "partition")); err == nil {
			continue // a partition, not a whole disk
		}
		d := Disk{Path: filepath.Join(devDir, name)}
		// With the device's logical block size. A table on a disk larger
		// than the one it was written for is accepted (first boot moves its
		// backup to the end); a disk with one valid copy is not.
		d.Table, d.Err = gpt.ReadFile(ctx, d.Path)
		disks = append(disks, d)
	}
	return disks, nil
}

// Virtual reports block devices (by kernel name) that never hold the OS
// disk or its data disk: loop, ram, zram, device-mapper, md, CD-ROM, nbd.
func Virtual(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "md", "sr", "nbd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
