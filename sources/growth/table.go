package growth

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/petrel-os/petrel/sources/gpt"
)

// Disk is an open whole disk (or disk image) to change.
type Disk interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// TableFix says what FixTable did.
type TableFix struct {
	// Repaired names the copy of the table that was damaged or stale and
	// has been rewritten from the other ("primary" or "backup"), or "".
	Repaired string
	// Problem is what was wrong with the repaired copy.
	Problem error
	// BackupFrom and BackupTo are the backup header's blocks before and
	// after; they differ when the backup was moved to the end.
	BackupFrom, BackupTo uint64
	// BlockSize is the disk's logical block size.
	BlockSize int
}

// Changed reports whether FixTable wrote the table.
func (f TableFix) Changed() bool { return f.Repaired != "" || f.BackupFrom != f.BackupTo }

// FixTable reads the GPT of a disk of size bytes with blockSize-byte
// blocks and, when only one copy is usable or the backup is not in the
// last block, writes the usable copy back (gpt.Write: backup at the end,
// then the primary). It returns the table as it now is on the disk.
func FixTable(ctx context.Context, d Disk, size int64, blockSize int) (*gpt.Table, TableFix, error) {
	t, err := gpt.ReadBlocks(ctx, d, size, blockSize)
	fix := TableFix{BlockSize: blockSize}
	var one *gpt.OneCopyError
	if errors.As(err, &one) {
		t, err = one.Table, nil
		fix.Repaired, fix.Problem = "backup", one.Err
		if one.Used == "backup" {
			fix.Repaired = "primary"
		}
	}
	if err != nil {
		return nil, fix, fmt.Errorf("read partition table: %w", err)
	}
	fix.BackupFrom, fix.BackupTo = t.BackupLBA, t.LastLBA
	if !fix.Changed() {
		return t, fix, nil
	}
	if err := gpt.Write(ctx, d, size, t); err != nil {
		return nil, fix, fmt.Errorf("rewrite partition table: %w", err)
	}
	t, err = gpt.ReadBlocks(ctx, d, size, blockSize)
	if err != nil {
		return nil, fix, fmt.Errorf("read back the rewritten partition table: %w", err)
	}
	return t, fix, nil
}

// ErrNotLast is wrapped when the partition to grow is followed by
// another one.
var ErrNotLast = errors.New("partition is not the last one on the disk")

// PartGrowth says what GrowEntry did.
type PartGrowth struct {
	Partition gpt.Partition // as it now is
	OldLast   uint64        // its last block before
	BlockSize int
}

// Grown reports whether the partition was extended.
func (g PartGrowth) Grown() bool { return g.Partition.LastLBA != g.OldLast }

// OldBytes and NewBytes are the partition's sizes before and after.
func (g PartGrowth) OldBytes() int64 {
	return int64(g.OldLast-g.Partition.FirstLBA+1) * int64(g.BlockSize)
}

// NewBytes is the partition's size after GrowEntry.
func (g PartGrowth) NewBytes() int64 { return int64(g.Partition.Blocks()) * int64(g.BlockSize) }

// GrowEntry extends the partition whose unique GUID is guid to the last
// usable block of t, the table FixTable returned for the disk of size
// bytes, and writes the table. It does nothing when the partition already
// ends there, and refuses (ErrNotLast) when another partition lies after
// it. Partitions only ever grow.
func GrowEntry(ctx context.Context, d Disk, size int64, t *gpt.Table, guid gpt.GUID) (PartGrowth, error) {
	p, ok := t.ByGUID(guid)
	if !ok {
		return PartGrowth{}, fmt.Errorf("grow partition %s: no partition has that GUID", guid)
	}
	g := PartGrowth{Partition: p, OldLast: p.LastLBA, BlockSize: t.BlockSize}
	if t.BackupMisplaced() {
		return g, fmt.Errorf("grow partition %d: the backup GPT is at block %d, not at the end (%d); fix the table first", p.Number, t.BackupLBA, t.LastLBA)
	}
	for _, q := range t.Partitions {
		if q.FirstLBA > p.LastLBA {
			return g, fmt.Errorf("grow partition %d: %w: partition %d starts at block %d after it", p.Number, ErrNotLast, q.Number, q.FirstLBA)
		}
	}
	if p.LastLBA >= t.LastUsableLBA {
		return g, nil
	}
	grown := *t
	grown.Partitions = append([]gpt.Partition(nil), t.Partitions...)
	for i := range grown.Partitions {
		if grown.Partitions[i].GUID == guid {
			grown.Partitions[i].LastLBA = t.LastUsableLBA
			g.Partition = grown.Partitions[i]
		}
	}
	if err := gpt.Write(ctx, d, size, &grown); err != nil {
		return PartGrowth{Partition: p, OldLast: p.LastLBA, BlockSize: t.BlockSize}, fmt.Errorf("grow partition %d: %w", p.Number, err)
	}
	return g, nil
}
