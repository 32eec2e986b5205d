package initramfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"

	"github.com/petrel-os/petrel/sources/gpt"
)

// ErrNoGPT is wrapped when a disk carries no valid GUID partition table.
var ErrNoGPT = errors.New("no valid GPT")

// gptPartition is one used entry of a GUID partition table.
type gptPartition struct {
	Number   int    // 1-based slot number, which is the kernel's partition number
	UniqueID string // lower-case GUID, the kernel's PARTUUID
	TypeID   string // lower-case GUID
	Name     string // partition name (GPT label), the kernel's PARTLABEL
	FirstLBA uint64
	LastLBA  uint64
}

const (
	gptMaxEntries   = 4096
	gptMaxEntrySize = 4096
)

// readGPT reads the partition table of a disk with the given logical block
// size. It tries the primary header at LBA 1 and, if that is damaged, the
// backup header in the last block (size is the disk size in bytes; 0 skips
// the fallback). Header and entry-array checksums are verified.
func readGPT(r io.ReaderAt, blockSize int, size int64) ([]gptPartition, error) {
	if blockSize < 512 || blockSize > 65536 || blockSize&(blockSize-1) != 0 {
		return nil, fmt.Errorf("read GPT: logical block size %d is not a power of two in [512, 65536]", blockSize)
	}
	parts, err := readGPTAt(r, blockSize, 1)
	if err == nil || size < int64(3*blockSize) {
		return parts, err
	}
	backup, berr := readGPTAt(r, blockSize, uint64(size/int64(blockSize))-1)
	if berr != nil {
		return nil, fmt.Errorf("%w (backup header: %w)", err, berr)
	}
	return backup, nil
}

func readGPTAt(r io.ReaderAt, blockSize int, lba uint64) ([]gptPartition, error) {
	hdr := make([]byte, blockSize)
	if _, err := r.ReadAt(hdr, int64(lba)*int64(blockSize)); err != nil {
		return nil, fmt.Errorf("read GPT header at LBA %d: %w", lba, err)
	}
	return parseGPT(hdr, lba, func(off int64, n int) ([]byte, error) {
		b := make([]byte, n)
		if _, err := r.ReadAt(b, off); err != nil {
			return nil, fmt.Errorf("read GPT entries at byte %d: %w", off, err)
		}
		return b, nil
	}, blockSize)
}

// parseGPT decodes the header block hdr (read from LBA lba) and the entry
// array obtained through read.
func parseGPT(hdr []byte, lba uint64, read func(off int64, n int) ([]byte, error), blockSize int) ([]gptPartition, error) {
	le := binary.LittleEndian
	if len(hdr) < 92 || !bytes.Equal(hdr[:8], []byte("EFI PART")) {
		return nil, fmt.Errorf("%w: no \"EFI PART\" signature at LBA %d", ErrNoGPT, lba)
	}
	hsize := le.Uint32(hdr[12:])
	if hsize < 92 || int(hsize) > len(hdr) {
		return nil, fmt.Errorf("%w: header size %d at LBA %d", ErrNoGPT, hsize, lba)
	}
	sum := le.Uint32(hdr[16:])
	h := append([]byte{}, hdr[:hsize]...)
	copy(h[16:20], []byte{0, 0, 0, 0})
	if crc32.ChecksumIEEE(h) != sum {
		return nil, fmt.Errorf("%w: header checksum mismatch at LBA %d", ErrNoGPT, lba)
	}
	if my := le.Uint64(hdr[24:]); my != lba {
		return nil, fmt.Errorf("%w: header at LBA %d says it lives at LBA %d", ErrNoGPT, lba, my)
	}
	entriesLBA := le.Uint64(hdr[72:])
	count := le.Uint32(hdr[80:])
	esize := le.Uint32(hdr[84:])
	esum := le.Uint32(hdr[88:])
	if count > gptMaxEntries || esize < 128 || esize > gptMaxEntrySize || esize%8 != 0 {
		return nil, fmt.Errorf("%w: %d entries of %d bytes", ErrNoGPT, count, esize)
	}
	if entriesLBA > (1<<62)/uint64(blockSize) {
		return nil, fmt.Errorf("%w: entry array LBA %d out of range", ErrNoGPT, entriesLBA)
	}
	arr, err := read(int64(entriesLBA)*int64(blockSize), int(count*esize))
	if err != nil {
		return nil, err
	}
	if crc32.ChecksumIEEE(arr) != esum {
		return nil, fmt.Errorf("%w: entry array checksum mismatch (header at LBA %d)", ErrNoGPT, lba)
	}
	var parts []gptPartition
	for i := 0; i < int(count); i++ {
		e := arr[i*int(esize):]
		var zero [16]byte
		if bytes.Equal(e[:16], zero[:]) {
			continue
		}
		parts = append(parts, gptPartition{
			Number:   i + 1,
			TypeID:   guidString(e[0:16]),
			UniqueID: guidString(e[16:32]),
			Name:     gpt.DecodeName(e[56:128]),
			FirstLBA: le.Uint64(e[32:]),
			LastLBA:  le.Uint64(e[40:]),
		})
	}
	return parts, nil
}

// guidString formats a mixed-endian on-disk GUID.
func guidString(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b[0:]), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}

// sameGUID compares GUID strings case-insensitively.
func sameGUID(a, b string) bool { return strings.EqualFold(a, b) }
