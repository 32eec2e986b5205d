package growth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/petrel-os/petrel/sources/gpt"
)

// PartReport says what GrowPartition did.
type PartReport struct {
	Table TableFix
	Part  PartGrowth
	// KernelBytes is the partition's size as the kernel knew it before;
	// KernelResized says GrowPartition told it the table's size.
	KernelBytes   int64
	KernelResized bool
}

// GrowPartition runs the steps that come before the partition is
// mounted, on the whole disk diskPath whose partition partPath has the
// unique GUID guid: FixTable, GrowEntry, and ResizeKernelPartition when
// the kernel knows the partition as smaller than the table says. The
// report says what was done even when a later step fails.
func GrowPartition(ctx context.Context, diskPath, partPath string, guid gpt.GUID) (r PartReport, err error) {
	f, err := os.OpenFile(diskPath, os.O_RDWR, 0)
	if err != nil {
		return r, fmt.Errorf("open disk: %w", err)
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	t, fix, err := fixOpenDisk(ctx, f)
	r.Table = fix
	if err != nil {
		return r, err
	}
	bs := t.BlockSize
	size := int64(t.LastLBA+1) * int64(bs)
	g, err := GrowEntry(ctx, f, size, t, guid)
	r.Part = g
	if err != nil {
		return r, fmt.Errorf("grow the partition table entry on %s: %w", diskPath, err)
	}
	if r.KernelBytes, err = deviceSize(partPath); err != nil {
		return r, err
	}
	switch {
	case r.KernelBytes == g.NewBytes():
	case r.KernelBytes > g.NewBytes():
		return r, fmt.Errorf("%s is %d bytes, more than its partition table entry (%d bytes)", partPath, r.KernelBytes, g.NewBytes())
	default:
		if err := ResizeKernelPartition(f, g.Partition.Number, int64(g.Partition.FirstLBA)*int64(bs), g.NewBytes()); err != nil {
			return r, err
		}
		r.KernelResized = true
	}
	return r, nil
}

// FixDisk runs FixTable on the whole disk at diskPath, with the disk's
// size and logical block size.
func FixDisk(ctx context.Context, diskPath string) (fix TableFix, err error) {
	f, err := os.OpenFile(diskPath, os.O_RDWR, 0)
	if err != nil {
		return fix, fmt.Errorf("open disk: %w", err)
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	_, fix, err = fixOpenDisk(ctx, f)
	return fix, err
}

func fixOpenDisk(ctx context.Context, f *os.File) (*gpt.Table, TableFix, error) {
	size, bs, err := gpt.Geometry(f)
	if err != nil {
		return nil, TableFix{}, err
	}
	t, fix, err := FixTable(ctx, f, size, bs)
	if err != nil {
		return nil, fix, fmt.Errorf("fix the partition table of %s: %w", f.Name(), err)
	}
	return t, fix, nil
}

// FSReport says what GrowFileSystem did.
type FSReport struct {
	Before, After  Ext4Size
	PartitionBytes int64
}

// Grown reports whether the file system got larger.
func (r FSReport) Grown() bool { return r.After.Blocks > r.Before.Blocks }

// GrowFileSystem grows the ext4 file system on partPath, mounted at
// mountpoint, to the whole partition as the kernel knows it, if it is
// smaller. It stops where the kernel's resize stops (Ext4Size.ResizeTarget:
// short of the end by less than one block group when the last group would
// be too small for its metadata) and does nothing when the file system is
// already there.
func GrowFileSystem(ctx context.Context, partPath, mountpoint string) (r FSReport, err error) {
	if err := ctx.Err(); err != nil {
		return r, err
	}
	f, err := os.Open(partPath)
	if err != nil {
		return r, fmt.Errorf("open %s: %w", partPath, err)
	}
	defer f.Close()
	if r.Before, err = ReadExt4Size(f); err != nil {
		return r, fmt.Errorf("%s: %w", partPath, err)
	}
	r.After = r.Before
	if r.PartitionBytes, err = f.Seek(0, io.SeekEnd); err != nil {
		return r, fmt.Errorf("find size of %s: %w", partPath, err)
	}
	want := r.Before.ResizeTarget(r.PartitionBytes)
	if want <= r.Before.Blocks {
		return r, nil
	}
	if err := ResizeExt4(mountpoint, want); err != nil {
		return r, err
	}
	if r.After, err = ReadExt4Size(f); err != nil {
		return r, fmt.Errorf("%s after resizing: %w", partPath, err)
	}
	return r, nil
}

// deviceSize returns the size of a block device (or file) in bytes.
func deviceSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("find size of %s: %w", path, err)
	}
	return n, nil
}
