package gpt

import (
	"errors"
	"fmt"
	"unicode/utf16"
)

// Geometry of the tables this package writes.
const (
	SectorSize   = 512 // bytes per logical block
	EntryCount   = 128 // entries in each partition entry array
	EntrySize    = 128 // bytes per entry
	HeaderSize   = 92  // bytes of the header covered by its CRC32
	NameMaxUnits = 36  // UTF-16 code units in a partition name

	entryArraySectors = EntryCount * EntrySize / SectorSize // 32
	// TableSectors is the number of sectors each copy of the table
	// occupies: the header plus the entry array.
	TableSectors = 1 + entryArraySectors
	// MinDiskSectors is the smallest disk that holds MBR, both tables and
	// one usable sector.
	MinDiskSectors = 1 + 2*TableSectors + 1

	revision1 = 0x00010000
	signature = "EFI PART"
)

// Partition is one used entry of the table.
type Partition struct {
	// Number is the 1-based entry index, as in /dev/vda<Number>.
	Number     int
	Type       GUID
	GUID       GUID
	FirstLBA   uint64 // first sector, inclusive
	LastLBA    uint64 // last sector, inclusive
	Attributes uint64
	Name       string
}

// SizeBytes returns the partition's length in bytes.
func (p Partition) SizeBytes() int64 {
	return int64(p.LastLBA-p.FirstLBA+1) * SectorSize
}

// OffsetBytes returns the partition's start in bytes from the disk's start.
func (p Partition) OffsetBytes() int64 { return int64(p.FirstLBA) * SectorSize }

// Table is a partition table. Partitions holds only used entries, in
// Number order after Read; Write accepts them in any order.
type Table struct {
	DiskGUID   GUID
	Partitions []Partition
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

// usableRange returns the first and last usable LBA of a disk with the
// given number of sectors.
func usableRange(sectors uint64) (first, last uint64) {
	return 1 + TableSectors, sectors - 1 - TableSectors
}

// Validate checks t against a disk of diskSectors sectors and reports
// every problem at once.
func (t *Table) Validate(diskSectors uint64) error {
	if diskSectors < MinDiskSectors {
		return fmt.Errorf("disk has %d sectors, need at least %d", diskSectors, MinDiskSectors)
	}
	first, last := usableRange(diskSectors)
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
