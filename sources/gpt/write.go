package gpt

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

// Write writes t as the partition table of a disk of sizeBytes bytes with
// t.BlockSize-byte blocks: the protective MBR entry and signature (bytes
// 440–511 of LBA 0), the backup entry array and header (the last blocks)
// and the primary header and entry array (LBA 1 on). Nothing else is
// written, so the MBR boot code and partition contents survive.
// sizeBytes must be a multiple of the block size.
//
// Order: the backup copy first, then (after a Sync when w has one) the
// primary. A write cut short therefore leaves a disk that Read can use:
// until the primary changes, the old primary and the backup it names are
// intact (or the backup is stale, and the primary wins); once the primary
// entries change, the new backup in the last block is complete. This holds
// for a table written to a larger disk too, where the new backup lands
// after the old one. Read reports the in-between states as *OneCopyError.
func Write(ctx context.Context, w io.WriterAt, sizeBytes int64, t *Table) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write GPT: %w", err)
	}
	bs := t.blockSize()
	if err := CheckBlockSize(bs); err != nil {
		return fmt.Errorf("write GPT: %w", err)
	}
	if sizeBytes%int64(bs) != 0 || sizeBytes < 0 {
		return fmt.Errorf("write GPT: disk size %d is not a multiple of the block size %d", sizeBytes, bs)
	}
	blocks := uint64(sizeBytes) / uint64(bs)
	if err := t.Validate(blocks); err != nil {
		return fmt.Errorf("write GPT: invalid table: %w", err)
	}
	array := encodeEntries(t.Partitions)
	arrayCRC := crc32.ChecksumIEEE(array)
	lastLBA := blocks - 1
	primary := encodeHeader(bs, t.DiskGUID, 1, lastLBA, blocks, 2, arrayCRC)
	backupArrayLBA := lastLBA - arrayBytes/uint64(bs)
	backup := encodeHeader(bs, t.DiskGUID, lastLBA, 1, blocks, backupArrayLBA, arrayCRC)

	off := func(lba uint64) int64 { return int64(lba) * int64(bs) }
	writes := []struct {
		off  int64
		data []byte
		what string
	}{
		{440, encodeProtectiveMBR(blocks), "protective MBR"},
		// Each copy's entries go before the header that carries their CRC.
		{off(backupArrayLBA), array, "backup partition entries"},
		{off(lastLBA), backup, "backup GPT header"},
		{-1, nil, "backup table"}, // barrier
		{off(2), array, "primary partition entries"},
		{off(1), primary, "primary GPT header"},
		{-1, nil, "partition table"},
	}
	syncer, _ := w.(interface{ Sync() error })
	for _, wr := range writes {
		if wr.off < 0 {
			if syncer != nil {
				if err := syncer.Sync(); err != nil {
					return fmt.Errorf("sync %s: %w", wr.what, err)
				}
			}
			continue
		}
		if _, err := w.WriteAt(wr.data, wr.off); err != nil {
			return fmt.Errorf("write %s: %w", wr.what, err)
		}
	}
	return nil
}

// encodeProtectiveMBR returns bytes 440–511 of LBA 0: a zero disk
// signature, one 0xEE entry covering the disk (capped at 2^32-1 sectors)
// and the 0x55AA boot signature.
func encodeProtectiveMBR(sectors uint64) []byte {
	b := make([]byte, 72)
	e := b[6:22] // entry 1 at byte 446
	e[0] = 0x00  // not bootable
	e[1], e[2], e[3] = 0x00, 0x02, 0x00
	e[4] = 0xEE
	size := sectors - 1
	if size > 0xFFFFFFFF {
		size = 0xFFFFFFFF
	}
	c, h, s := chs(size) // CHS of the last LBA
	e[5], e[6], e[7] = h, s, c
	binary.LittleEndian.PutUint32(e[8:], 1)
	binary.LittleEndian.PutUint32(e[12:], uint32(size))
	b[70], b[71] = 0x55, 0xAA
	return b
}

// chs encodes lba in the 255-head, 63-sector geometry, or 0xFFFFFF when it
// does not fit, as the UEFI specification asks.
func chs(lba uint64) (cyl, head, sec byte) {
	const heads, spt = 255, 63
	c := lba / (heads * spt)
	if c > 1023 {
		return 0xFF, 0xFF, 0xFF
	}
	h := (lba / spt) % heads
	s := lba%spt + 1
	return byte(c), byte(h), byte(s) | byte(c>>8)<<6
}

func encodeHeader(bs int, disk GUID, my, alternate, blocks, entriesLBA uint64, arrayCRC uint32) []byte {
	b := make([]byte, bs)
	first, last := UsableRange(blocks, bs)
	copy(b[0:8], signature)
	binary.LittleEndian.PutUint32(b[8:], revision1)
	binary.LittleEndian.PutUint32(b[12:], HeaderSize)
	binary.LittleEndian.PutUint64(b[24:], my)
	binary.LittleEndian.PutUint64(b[32:], alternate)
	binary.LittleEndian.PutUint64(b[40:], first)
	binary.LittleEndian.PutUint64(b[48:], last)
	g := disk.encode()
	copy(b[56:72], g[:])
	binary.LittleEndian.PutUint64(b[72:], entriesLBA)
	binary.LittleEndian.PutUint32(b[80:], EntryCount)
	binary.LittleEndian.PutUint32(b[84:], EntrySize)
	binary.LittleEndian.PutUint32(b[88:], arrayCRC)
	binary.LittleEndian.PutUint32(b[16:], crc32.ChecksumIEEE(b[:HeaderSize]))
	return b
}

func encodeEntries(parts []Partition) []byte {
	b := make([]byte, EntryCount*EntrySize)
	for _, p := range parts {
		e := b[(p.Number-1)*EntrySize : p.Number*EntrySize]
		tg, ug := p.Type.encode(), p.GUID.encode()
		copy(e[0:16], tg[:])
		copy(e[16:32], ug[:])
		binary.LittleEndian.PutUint64(e[32:], p.FirstLBA)
		binary.LittleEndian.PutUint64(e[40:], p.LastLBA)
		binary.LittleEndian.PutUint64(e[48:], p.Attributes)
		for i, u := range utf16.Encode([]rune(p.Name)) {
			binary.LittleEndian.PutUint16(e[56+2*i:], u)
		}
	}
	return b
}
