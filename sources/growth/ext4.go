package growth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrNotExt4 is wrapped when a device holds no ext4 superblock.
var ErrNotExt4 = errors.New("no ext4 superblock")

// Ext4Size is what an ext4 superblock says about the file system's size.
type Ext4Size struct {
	Blocks    uint64 // s_blocks_count
	BlockSize uint32 // 1024 << s_log_block_size
}

// Bytes is the file system's size in bytes.
func (s Ext4Size) Bytes() int64 { return int64(s.Blocks) * int64(s.BlockSize) }

// ReadExt4Size reads the primary superblock (1024 bytes at byte 1024) of
// the ext4 file system on r: magic, block size and block count (the high
// half only with the 64bit feature).
func ReadExt4Size(r io.ReaderAt) (Ext4Size, error) {
	sb := make([]byte, 1024)
	if _, err := r.ReadAt(sb, 1024); err != nil {
		return Ext4Size{}, fmt.Errorf("read ext4 superblock: %w", err)
	}
	return parseExt4Size(sb)
}

// parseExt4Size decodes the fields of a 1024-byte superblock.
func parseExt4Size(sb []byte) (Ext4Size, error) {
	le := binary.LittleEndian
	if m := le.Uint16(sb[0x38:]); m != 0xEF53 {
		return Ext4Size{}, fmt.Errorf("%w: magic %#04x at byte 1080, want 0xef53", ErrNotExt4, m)
	}
	logBS := le.Uint32(sb[0x18:])
	if logBS > 6 { // 1 KiB .. 64 KiB
		return Ext4Size{}, fmt.Errorf("%w: s_log_block_size %d, want 0..6", ErrNotExt4, logBS)
	}
	s := Ext4Size{Blocks: uint64(le.Uint32(sb[0x4:])), BlockSize: 1024 << logBS}
	const incompat64bit = 0x80
	if le.Uint32(sb[0x60:])&incompat64bit != 0 {
		s.Blocks |= uint64(le.Uint32(sb[0x150:])) << 32
	}
	if s.Blocks == 0 || s.Blocks > 1<<48 {
		return Ext4Size{}, fmt.Errorf("%w: block count %d", ErrNotExt4, s.Blocks)
	}
	return s, nil
}
