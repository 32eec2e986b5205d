package gpt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"unicode/utf16"
)

// ErrInvalid is matched (errors.Is) by every FieldError.
var ErrInvalid = errors.New("invalid GPT")

// maxArrayBytes bounds the entry array Read accepts (the specification
// leaves it open; real tables use 16 KiB).
const maxArrayBytes = 1 << 20

// FieldError names one bad field of a table.
type FieldError struct {
	Where   string // "protective MBR", "primary header", "backup header", "primary entry 3"
	Field   string // e.g. "HeaderCRC32", "PartitionEntryArrayCRC32", "FirstLBA"
	Problem string // what was found and what was expected
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Where, e.Field, e.Problem)
}

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// header is a decoded GPT header.
type header struct {
	my, alternate, firstUsable, lastUsable, entriesLBA uint64
	disk                                               GUID
	numEntries, entrySize, arrayCRC                    uint32
}

// OneCopyError is returned by Read when only one copy of the table is
// valid, or both are valid but disagree: a write of the table was cut
// short, or one copy is damaged. Table is the copy to trust (the primary
// when it is valid, else the backup in the disk's last block); writing it
// back with Write repairs the disk. The error matches ErrInvalid and
// unwraps to the problems of the other copy.
type OneCopyError struct {
	Table *Table
	Used  string // "primary" or "backup"
	Err   error  // what is wrong with the other copy
}

func (e *OneCopyError) Error() string {
	return fmt.Sprintf("only the %s table is usable: %v", e.Used, e.Err)
}

func (e *OneCopyError) Unwrap() error { return e.Err }

// Read reads and checks the partition table of a disk image of sizeBytes
// bytes with 512-byte blocks. See ReadBlocks.
func Read(ctx context.Context, r io.ReaderAt, sizeBytes int64) (*Table, error) {
	return ReadBlocks(ctx, r, sizeBytes, SectorSize)
}

// ReadBlocks reads and checks the partition table of a disk of sizeBytes
// bytes with logical blocks of blockSize bytes (512 or 4096): the
// protective MBR, both headers and both entry arrays, and that the two
// copies agree. Every problem found is reported (errors.Join of
// *FieldError values).
//
// The backup header is read where the primary header's AlternateLBA says.
// That is the disk's last block, or an earlier block when the table was
// written for a smaller disk (an image on a larger disk); the returned
// Table says so (BackupMisplaced). Everything else is strict.
//
// When exactly one copy is valid, or both are valid but disagree, the
// error is a *OneCopyError that carries the copy to trust.
func ReadBlocks(ctx context.Context, r io.ReaderAt, sizeBytes int64, blockSize int) (*Table, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read GPT: %w", err)
	}
	if err := CheckBlockSize(blockSize); err != nil {
		return nil, fmt.Errorf("read GPT: %w", err)
	}
	bs := uint64(blockSize)
	if sizeBytes < 0 || uint64(sizeBytes)/bs < minDiskBlocks(blockSize) {
		return nil, &FieldError{"disk", "size", fmt.Sprintf("%d bytes, need at least %d blocks of %d bytes", sizeBytes, minDiskBlocks(blockSize), bs)}
	}
	d := disk{r: r, bs: bs, last: uint64(sizeBytes)/bs - 1}
	mbr := make([]byte, SectorSize)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("read protective MBR: %w", err)
	}
	mbrErrs := checkMBR(mbr)

	primary, ph, perrs, err := d.readCopy(1, "primary")
	if err != nil {
		return nil, err
	}
	var backup *Table
	var berrs []error
	if len(perrs) == 0 {
		var bh header
		if backup, bh, berrs, err = d.readCopy(primary.BackupLBA, "backup"); err != nil {
			return nil, err
		}
		if len(berrs) == 0 {
			berrs = compareHeaders(ph, bh)
		}
	} else if backup, _, berrs, err = d.readCopy(d.last, "backup"); err != nil {
		// Without a valid primary header, the backup can only be found
		// where the specification puts it: in the last block.
		return nil, err
	}
	switch {
	case len(mbrErrs) == 0 && len(perrs) == 0 && len(berrs) == 0:
		return primary, nil
	case len(mbrErrs) > 0 || len(perrs) > 0 && len(berrs) > 0:
		return nil, errors.Join(append(append(mbrErrs, perrs...), berrs...)...)
	case len(perrs) > 0:
		return nil, &OneCopyError{Table: backup, Used: "backup", Err: errors.Join(perrs...)}
	default:
		return nil, &OneCopyError{Table: primary, Used: "primary", Err: errors.Join(berrs...)}
	}
}

// disk is a disk being read: its blocks and last LBA.
type disk struct {
	r    io.ReaderAt
	bs   uint64
	last uint64
}

// readCopy reads the header at lba and its entry array. The error return
// is for I/O errors; problems with the copy are the []error.
func (d disk) readCopy(lba uint64, which string) (*Table, header, []error, error) {
	h, errs, err := d.readHeader(lba, which+" header")
	if err != nil || len(errs) > 0 {
		return nil, h, errs, err
	}
	parts, errs, err := d.readEntries(h, which)
	if err != nil || len(errs) > 0 {
		return nil, h, errs, err
	}
	t := &Table{DiskGUID: h.disk, Partitions: parts, BlockSize: int(d.bs), LastLBA: d.last,
		FirstUsableLBA: h.firstUsable, LastUsableLBA: h.lastUsable, BackupLBA: h.alternate}
	if lba != 1 {
		t.BackupLBA = lba
	}
	return t, h, nil, nil
}

func checkMBR(b []byte) []error {
	var errs []error
	if b[510] != 0x55 || b[511] != 0xAA {
		errs = append(errs, &FieldError{"protective MBR", "Signature", fmt.Sprintf("%#02x%02x, want 0x55aa", b[510], b[511])})
	}
	found := false
	for i := 0; i < 4; i++ {
		if b[446+16*i+4] == 0xEE {
			found = true
		}
	}
	if !found {
		errs = append(errs, &FieldError{"protective MBR", "PartitionRecord", "no entry of type 0xEE"})
	}
	return errs
}

func (d disk) readHeader(lba uint64, where string) (header, []error, error) {
	var h header
	b := make([]byte, d.bs)
	if _, err := d.r.ReadAt(b, int64(lba*d.bs)); err != nil {
		return h, nil, fmt.Errorf("read %s at LBA %d: %w", where, lba, err)
	}
	bad := func(field, format string, args ...any) []error {
		return []error{&FieldError{where, field, fmt.Sprintf(format, args...)}}
	}
	if string(b[0:8]) != signature {
		return h, bad("Signature", "%q, want %q", b[0:8], signature), nil
	}
	if rev := binary.LittleEndian.Uint32(b[8:]); rev>>16 != 1 {
		return h, bad("Revision", "%#08x, want major version 1", rev), nil
	}
	size := binary.LittleEndian.Uint32(b[12:])
	if size < HeaderSize || uint64(size) > d.bs {
		return h, bad("HeaderSize", "%d, want %d..%d", size, HeaderSize, d.bs), nil
	}
	got := binary.LittleEndian.Uint32(b[16:])
	c := bytes.Clone(b[:size])
	binary.LittleEndian.PutUint32(c[16:], 0)
	if want := crc32.ChecksumIEEE(c); got != want {
		return h, bad("HeaderCRC32", "%#08x, computed %#08x", got, want), nil
	}
	h.my = binary.LittleEndian.Uint64(b[24:])
	h.alternate = binary.LittleEndian.Uint64(b[32:])
	h.firstUsable = binary.LittleEndian.Uint64(b[40:])
	h.lastUsable = binary.LittleEndian.Uint64(b[48:])
	h.disk = decodeGUID(b[56:72])
	h.entriesLBA = binary.LittleEndian.Uint64(b[72:])
	h.numEntries = binary.LittleEndian.Uint32(b[80:])
	h.entrySize = binary.LittleEndian.Uint32(b[84:])
	h.arrayCRC = binary.LittleEndian.Uint32(b[88:])

	var errs []error
	// end is the block of the backup header: the primary names it, the
	// backup is there itself. It may lie before the disk's last block.
	end := lba
	if lba == 1 {
		end = h.alternate
		switch {
		case h.alternate > d.last:
			errs = append(errs, bad("AlternateLBA", "%d, beyond the disk's last LBA %d (the disk is smaller than the table)", h.alternate, d.last)...)
		case h.alternate < minDiskBlocks(int(d.bs))-1:
			errs = append(errs, bad("AlternateLBA", "%d, want %d..%d", h.alternate, minDiskBlocks(int(d.bs))-1, d.last)...)
		}
	} else if h.alternate != 1 {
		errs = append(errs, bad("AlternateLBA", "%d, want 1", h.alternate)...)
	}
	if h.my != lba {
		errs = append(errs, bad("MyLBA", "%d, want %d", h.my, lba)...)
	}
	if h.entrySize < 128 || h.entrySize&(h.entrySize-1) != 0 {
		errs = append(errs, bad("SizeOfPartitionEntry", "%d, want 128 or a larger power of two", h.entrySize)...)
	}
	arrayBytes := uint64(h.numEntries) * uint64(h.entrySize)
	if h.numEntries == 0 || arrayBytes > maxArrayBytes {
		errs = append(errs, bad("NumberOfPartitionEntries", "%d entries of %d bytes, want 1..%d bytes in all", h.numEntries, h.entrySize, maxArrayBytes)...)
	}
	if len(errs) > 0 {
		return h, errs, nil
	}
	arrayBlocks := (arrayBytes + d.bs - 1) / d.bs
	if h.firstUsable > h.lastUsable+1 || h.lastUsable >= end || h.firstUsable < 2 {
		errs = append(errs, bad("FirstUsableLBA/LastUsableLBA", "%d..%d, want a range inside 2..%d", h.firstUsable, h.lastUsable, end-1)...)
	}
	entriesEnd := h.entriesLBA + arrayBlocks // exclusive
	switch {
	case h.entriesLBA < 2 || entriesEnd > end || entriesEnd < h.entriesLBA:
		errs = append(errs, bad("PartitionEntryLBA", "%d (+%d blocks) outside blocks 2..%d", h.entriesLBA, arrayBlocks, end-1)...)
	case h.entriesLBA <= h.lastUsable && entriesEnd > h.firstUsable:
		errs = append(errs, bad("PartitionEntryLBA", "entries at %d..%d overlap usable range %d..%d", h.entriesLBA, entriesEnd-1, h.firstUsable, h.lastUsable)...)
	}
	return h, errs, nil
}

func (d disk) readEntries(h header, which string) ([]Partition, []error, error) {
	b := make([]byte, int(h.numEntries)*int(h.entrySize))
	if _, err := d.r.ReadAt(b, int64(h.entriesLBA*d.bs)); err != nil {
		return nil, nil, fmt.Errorf("read %s partition entries at LBA %d: %w", which, h.entriesLBA, err)
	}
	if got := crc32.ChecksumIEEE(b); got != h.arrayCRC {
		return nil, []error{&FieldError{which + " header", "PartitionEntryArrayCRC32", fmt.Sprintf("%#08x, computed %#08x over the entries", h.arrayCRC, got)}}, nil
	}
	var parts []Partition
	var errs []error
	for i := 0; i < int(h.numEntries); i++ {
		e := b[i*int(h.entrySize) : (i+1)*int(h.entrySize)]
		typ := decodeGUID(e[0:16])
		if typ.IsZero() {
			continue
		}
		p := Partition{
			Number:     i + 1,
			Type:       typ,
			GUID:       decodeGUID(e[16:32]),
			FirstLBA:   binary.LittleEndian.Uint64(e[32:]),
			LastLBA:    binary.LittleEndian.Uint64(e[40:]),
			Attributes: binary.LittleEndian.Uint64(e[48:]),
			Name:       DecodeName(e[56:128]),
		}
		where := fmt.Sprintf("%s entry %d", which, p.Number)
		if p.FirstLBA > p.LastLBA {
			errs = append(errs, &FieldError{where, "StartingLBA", fmt.Sprintf("%d after EndingLBA %d", p.FirstLBA, p.LastLBA)})
		} else if p.FirstLBA < h.firstUsable || p.LastLBA > h.lastUsable {
			errs = append(errs, &FieldError{where, "StartingLBA/EndingLBA", fmt.Sprintf("%d..%d outside usable range %d..%d", p.FirstLBA, p.LastLBA, h.firstUsable, h.lastUsable)})
		}
		parts = append(parts, p)
	}
	sorted := append([]Partition(nil), parts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].FirstLBA < sorted[j].FirstLBA })
	for i := 1; i < len(sorted); i++ {
		if p, q := sorted[i], sorted[i-1]; p.FirstLBA <= q.LastLBA {
			errs = append(errs, &FieldError{fmt.Sprintf("%s entry %d", which, p.Number), "StartingLBA", fmt.Sprintf("%d overlaps entry %d (%d..%d)", p.FirstLBA, q.Number, q.FirstLBA, q.LastLBA)})
		}
	}
	return parts, errs, nil
}

func compareHeaders(p, b header) []error {
	var errs []error
	diff := func(field string, pv, bv any) {
		errs = append(errs, &FieldError{"backup header", field, fmt.Sprintf("%v, primary has %v", bv, pv)})
	}
	if p.disk != b.disk {
		diff("DiskGUID", p.disk, b.disk)
	}
	if p.firstUsable != b.firstUsable || p.lastUsable != b.lastUsable {
		diff("FirstUsableLBA/LastUsableLBA", fmt.Sprintf("%d..%d", p.firstUsable, p.lastUsable), fmt.Sprintf("%d..%d", b.firstUsable, b.lastUsable))
	}
	if p.numEntries != b.numEntries || p.entrySize != b.entrySize {
		diff("NumberOfPartitionEntries", fmt.Sprintf("%d×%d", p.numEntries, p.entrySize), fmt.Sprintf("%d×%d", b.numEntries, b.entrySize))
	}
	if p.arrayCRC != b.arrayCRC {
		diff("PartitionEntryArrayCRC32", fmt.Sprintf("%#08x", p.arrayCRC), fmt.Sprintf("%#08x", b.arrayCRC))
	}
	return errs
}

// DecodeName decodes a GPT partition name field: UTF-16LE, up to the
// first NUL.
func DecodeName(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
