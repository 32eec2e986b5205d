package gpt

import (
	"errors"
	"fmt"
	"unicode/utf16"
)

// Geometry of the tables this package writes.
const (
	SectorSize   = 512 // bytes per logical block of disk images (and the default block size)
	EntryCount   = 128 // entries in each partition entry array
	EntrySize    = 128 // bytes per entry
	HeaderSize   = 92  // bytes of the header covered by its CRC32
	NameMaxUnits = 36  // UTF-16 code units in a partition name

	// arrayBytes is the size of one entry array: 32 blocks of 512 bytes
	// or 4 of 4096.
	arrayBytes = EntryCount * EntrySize

	revision1 = 0x00010000
	signature = "EFI PART"
)

// CheckBlockSize reports whether bs is a logical block size this package
// reads and writes: 512 (disk images, virtio, 512e disks) or 4096 (4Kn
// disks).
func CheckBlockSize(bs int) error {
	if bs != 512 && bs != 4096 {
		return fmt.Errorf("logical block size %d: want 512 or 4096", bs)
	}
	return nil
}

// tableBlocks is the number of blocks each copy of a table this package
// writes occupies: the header plus the entry array.
func tableBlocks(bs int) uint64 { return 1 + arrayBytes/uint64(bs) }

// minDiskBlocks is the smallest disk that holds the MBR, both tables and
// one usable block.
func minDiskBlocks(bs int) uint64 { return 1 + 2*tableBlocks(bs) + 1 }

// Partition is one used entry of the table.
type Partition struct {
	// Number is the 1-based entry index, as in /dev/vda<Number>.
	Number     int
	Type       GUID
	GUID       GUID
	FirstLBA   uint64 // first block, inclusive
	LastLBA    uint64 // last block, inclusive
	Attributes uint64
	Name       string
}

// Blocks returns the partition's length in logical blocks.
func (p Partition) Blocks() uint64 { return p.LastLBA - p.FirstLBA + 1 }

// Table is a partition table. Partitions holds only used entries, in
// Number order after Read; Write accepts them in any order.
//
// Read fills in where the table was found; Write ignores those fields and
// lays the table out for the disk it writes to (backup at the end, usable
// range between the two copies).
type Table struct {
	DiskGUID   GUID
	Partitions []Partition
	// BlockSize is the logical block size in bytes, 512 or 4096. Write
	// takes 0 as 512.
	BlockSize int

	// LastLBA is the disk's last block (set by Read).
	LastLBA uint64
	// BackupLBA is the block that holds the backup header (set by Read):
	// LastLBA, or less when the disk is larger than the disk the table was
	// written for (an image copied to a larger disk). Write moves it to
	// the end.
	BackupLBA uint64
	// FirstUsableLBA and LastUsableLBA bound the partitions (set by Read).
	FirstUsableLBA, LastUsableLBA uint64
}

// BackupMisplaced reports whether the backup table is not at the end of
// the disk (see BackupLBA).
func (t *Table) BackupMisplaced() bool { return t.BackupLBA != t.LastLBA }

// blockSize returns the table's block size, 512 when unset.
func (t *Table) blockSize() int {
	if t.BlockSize == 0 {
		return SectorSize
	}
	return t.BlockSize
}

// Bytes returns the partition's offset from the start of the disk and its
// length, in bytes.
func (t *Table) Bytes(p Partition) (offset, size int64) {
	bs := int64(t.blockSize())
	return int64(p.FirstLBA) * bs, int64(p.Blocks()) * bs
}

// Partition returns the entry with the given number, or false.
func (t *Table) Partition(number int) (Partition, bool) {
	for _, p := range t.Partitions {
		if p.Number == number {
			return p, true
		}
	}
	return Partition{}, false
}

// ByName returns the first entry whose name is name, or false.
func (t *Table) ByName(name string) (Partition, bool) {
	for _, p := range t.Partitions {
		if p.Name == name {
			return p, true
		}
	}
	return Partition{}, false
}

// ByGUID returns the entry whose unique GUID is g, or false.
func (t *Table) ByGUID(g GUID) (Partition, bool) {
	for _, p := range t.Partitions {
		if p.GUID == g {
			return p, true
		}
	}
	return Partition{}, false
}

// UsableRange returns the first and last usable block of a disk of the
// given number of blocks, as Write lays it out.
func UsableRange(blocks uint64, blockSize int) (first, last uint64) {
	return 1 + tableBlocks(blockSize), blocks - 1 - tableBlocks(blockSize)
}

// Validate checks t against a disk of diskBlocks logical blocks and
// reports every problem at once.
func (t *Table) Validate(diskBlocks uint64) error {
	bs := t.blockSize()
	if err := CheckBlockSize(bs); err != nil {
		return err
	}
	if diskBlocks < minDiskBlocks(bs) {
		return fmt.Errorf("disk has %d blocks of %d bytes, need at least %d", diskBlocks, bs, minDiskBlocks(bs))
	}
	first, last := UsableRange(diskBlocks, bs)
	var errs []error
	seen := map[int]bool{}
	for i, p := range t.Partitions {
		where := fmt.Sprintf("partition %d (%q)", p.Number, p.Name)
		if p.Number < 1 || p.Number > EntryCount {
			errs = append(errs, fmt.Errorf("%s: number must be 1..%d", where, EntryCount))
		} else if seen[p.Number] {
			errs = append(errs, fmt.Errorf("%s: number used twice", where))
		}
		seen[p.Number] = true
		if p.Type.IsZero() {
			errs = append(errs, fmt.Errorf("%s: type GUID is zero (that marks an unused entry)", where))
		}
		if p.FirstLBA > p.LastLBA {
			errs = append(errs, fmt.Errorf("%s: first LBA %d after last LBA %d", where, p.FirstLBA, p.LastLBA))
		}
		if p.FirstLBA < first || p.LastLBA > last {
			errs = append(errs, fmt.Errorf("%s: LBAs %d..%d outside usable range %d..%d", where, p.FirstLBA, p.LastLBA, first, last))
		}
		if n := len(utf16.Encode([]rune(p.Name))); n > NameMaxUnits {
			errs = append(errs, fmt.Errorf("%s: name is %d UTF-16 units, at most %d fit", where, n, NameMaxUnits))
		}
		for _, q := range t.Partitions[:i] {
			if p.FirstLBA <= q.LastLBA && q.FirstLBA <= p.LastLBA {
				errs = append(errs, fmt.Errorf("%s: overlaps partition %d (%q)", where, q.Number, q.Name))
			}
		}
	}
	return errors.Join(errs...)
}
