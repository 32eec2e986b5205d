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

// Read reads and checks the partition table of a disk of sizeBytes bytes:
// protective MBR, both headers and both entry arrays, and that the two
// copies agree. Every problem found is reported (errors.Join of
// *FieldError values).
func Read(ctx context.Context, r io.ReaderAt, sizeBytes int64) (*Table, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read GPT: %w", err)
	}
	if sizeBytes < MinDiskSectors*SectorSize {
		return nil, &FieldError{"disk", "size", fmt.Sprintf("%d bytes, need at least %d", sizeBytes, MinDiskSectors*SectorSize)}
	}
	sectors := uint64(sizeBytes / SectorSize)
	var errs []error
	mbr := make([]byte, SectorSize)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("read protective MBR: %w", err)
	}
	errs = append(errs, checkMBR(mbr)...)

	ph, perrs, err := readHeader(r, 1, sectors, "primary header")
	if err != nil {
		return nil, err
	}
	errs = append(errs, perrs...)
	var parts []Partition
	if len(perrs) == 0 {
		var eerrs []error
		parts, eerrs, err = readEntries(r, ph, "primary")
		if err != nil {
			return nil, err
		}
		errs = append(errs, eerrs...)
	}
	// The backup header lives in the last sector; a valid primary header
	// names it in AlternateLBA, which must be that sector anyway.
	bh, berrs, err := readHeader(r, sectors-1, sectors, "backup header")
	if err != nil {
		return nil, err
	}
	errs = append(errs, berrs...)
	if len(berrs) == 0 {
		_, eerrs, err := readEntries(r, bh, "backup")
		if err != nil {
			return nil, err
		}
		errs = append(errs, eerrs...)
	}
	if len(perrs) == 0 && len(berrs) == 0 {
		errs = append(errs, compareHeaders(ph, bh)...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Table{DiskGUID: ph.disk, Partitions: parts}, nil
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

func readHeader(r io.ReaderAt, lba, sectors uint64, where string) (header, []error, error) {
	var h header
	b := make([]byte, SectorSize)
	if _, err := r.ReadAt(b, int64(lba)*SectorSize); err != nil {
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
	if size < HeaderSize || size > SectorSize {
		return h, bad("HeaderSize", "%d, want %d..%d", size, HeaderSize, SectorSize), nil
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
	other := sectors - 1
	if lba != 1 {
		other = 1
	}
	if h.my != lba {
		errs = append(errs, bad("MyLBA", "%d, want %d", h.my, lba)...)
	}
	if h.alternate != other {
		errs = append(errs, bad("AlternateLBA", "%d, want %d (disk has %d sectors)", h.alternate, other, sectors)...)
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
	arraySectors := (arrayBytes + SectorSize - 1) / SectorSize
	if h.firstUsable > h.lastUsable+1 || h.lastUsable >= sectors-1 || h.firstUsable < 2 {
		errs = append(errs, bad("FirstUsableLBA/LastUsableLBA", "%d..%d, want a range inside 2..%d", h.firstUsable, h.lastUsable, sectors-2)...)
	}
	entriesEnd := h.entriesLBA + arraySectors // exclusive
	switch {
	case h.entriesLBA < 2 || entriesEnd > sectors-1 || entriesEnd < h.entriesLBA:
		errs = append(errs, bad("PartitionEntryLBA", "%d (+%d sectors) outside the disk's %d sectors", h.entriesLBA, arraySectors, sectors)...)
	case h.entriesLBA <= h.lastUsable && entriesEnd > h.firstUsable:
		errs = append(errs, bad("PartitionEntryLBA", "entries at %d..%d overlap usable range %d..%d", h.entriesLBA, entriesEnd-1, h.firstUsable, h.lastUsable)...)
	}
	return h, errs, nil
}

func readEntries(r io.ReaderAt, h header, which string) ([]Partition, []error, error) {
	b := make([]byte, int(h.numEntries)*int(h.entrySize))
	if _, err := r.ReadAt(b, int64(h.entriesLBA)*SectorSize); err != nil {
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
