package growth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrNotExt4 is wrapped when a device holds no ext4 superblock.
var ErrNotExt4 = errors.New("no ext4 superblock")

// Ext4Size is what an ext4 superblock says about the file system's size
// and block groups: enough to tell how far the kernel's online resize
// will grow it.
type Ext4Size struct {
	Blocks    uint64 // s_blocks_count
	BlockSize uint32 // 1024 << s_log_block_size

	firstDataBlock  uint64
	blocksPerGroup  uint64
	inodeTableBlks  uint64 // inode table blocks per group
	reservedGDT     uint64
	descSize        uint64
	firstMetaBG     uint64
	sparseSuper     bool
	sparseSuper2    bool
	backupBGs       [2]uint64
	metaBG          bool
	clusterRatio    uint64
	predictionValid bool // false with features the prediction does not model
}

// Bytes is the file system's size in bytes.
func (s Ext4Size) Bytes() int64 { return int64(s.Blocks) * int64(s.BlockSize) }

// ReadExt4Size reads the primary superblock (1024 bytes at byte 1024) of
// the ext4 file system on r.
func ReadExt4Size(r io.ReaderAt) (Ext4Size, error) {
	sb := make([]byte, 1024)
	if _, err := r.ReadAt(sb, 1024); err != nil {
		return Ext4Size{}, fmt.Errorf("read ext4 superblock: %w", err)
	}
	return parseExt4Size(sb)
}

// Superblock fields and feature bits (the kernel's fs/ext4/ext4.h).
const (
	compatSparseSuper2   = 0x200
	incompatMetaBG       = 0x10
	incompat64bit        = 0x80
	roCompatSparseSuper  = 0x1
	roCompatBigalloc     = 0x200
	maxLogBlockSize      = 6 // 64 KiB
	minDescSize          = 32
	maxBlocks            = 1 << 48
	superblockMagic      = 0xEF53
	superblockMagicField = 0x38
)

// parseExt4Size decodes the fields of a 1024-byte superblock.
func parseExt4Size(sb []byte) (Ext4Size, error) {
	le := binary.LittleEndian
	if m := le.Uint16(sb[superblockMagicField:]); m != superblockMagic {
		return Ext4Size{}, fmt.Errorf("%w: magic %#04x at byte 1080, want 0xef53", ErrNotExt4, m)
	}
	logBS := le.Uint32(sb[0x18:])
	if logBS > maxLogBlockSize {
		return Ext4Size{}, fmt.Errorf("%w: s_log_block_size %d, want 0..%d", ErrNotExt4, logBS, maxLogBlockSize)
	}
	compat, incompat, roCompat := le.Uint32(sb[0x5C:]), le.Uint32(sb[0x60:]), le.Uint32(sb[0x64:])
	s := Ext4Size{
		Blocks:         uint64(le.Uint32(sb[0x4:])),
		BlockSize:      1024 << logBS,
		firstDataBlock: uint64(le.Uint32(sb[0x14:])),
		blocksPerGroup: uint64(le.Uint32(sb[0x20:])),
		reservedGDT:    uint64(le.Uint16(sb[0xCE:])),
		descSize:       minDescSize,
		firstMetaBG:    uint64(le.Uint32(sb[0x104:])),
		sparseSuper:    roCompat&roCompatSparseSuper != 0,
		sparseSuper2:   compat&compatSparseSuper2 != 0,
		backupBGs:      [2]uint64{uint64(le.Uint32(sb[0x24C:])), uint64(le.Uint32(sb[0x250:]))},
		metaBG:         incompat&incompatMetaBG != 0,
		clusterRatio:   1,
	}
	if incompat&incompat64bit != 0 {
		s.Blocks |= uint64(le.Uint32(sb[0x150:])) << 32
		if d := uint64(le.Uint16(sb[0xFE:])); d > minDescSize {
			s.descSize = d
		}
	}
	if s.Blocks == 0 || s.Blocks > maxBlocks {
		return Ext4Size{}, fmt.Errorf("%w: block count %d", ErrNotExt4, s.Blocks)
	}
	inodesPerGroup, inodeSize := uint64(le.Uint32(sb[0x28:])), uint64(le.Uint16(sb[0x58:]))
	s.predictionValid = roCompat&roCompatBigalloc == 0 && s.blocksPerGroup > 0 && inodeSize > 0 &&
		uint64(s.BlockSize)%inodeSize == 0 && s.descSize <= uint64(s.BlockSize) && s.firstDataBlock < s.blocksPerGroup
	if s.predictionValid {
		s.inodeTableBlks = inodesPerGroup / (uint64(s.BlockSize) / inodeSize)
	}
	return s, nil
}

// ResizeTarget returns the block count the kernel's online resize
// (ext4_resize_fs) reaches when asked to fill a partition of partBytes:
// the whole blocks that fit, less a last block group too small for the
// metadata it might need (the kernel then stops at that group's start).
// GrowFileSystem asks the kernel only when this is more than Blocks, so a
// file system that already fills its partition is left alone (the kernel
// would log a resize on every boot otherwise).
func (s Ext4Size) ResizeTarget(partBytes int64) uint64 {
	want := uint64(partBytes) / uint64(s.BlockSize)
	if !s.predictionValid || want <= s.Blocks {
		return want
	}
	group := (want - 1 - s.firstDataBlock) / s.blocksPerGroup
	start := s.firstDataBlock + group*s.blocksPerGroup
	if start+s.overhead(group)+2+s.inodeTableBlks+s.clusterRatio >= want {
		return start
	}
	return want
}

// overhead is ext4_group_overhead_blocks: the superblock backup and group
// descriptor blocks that block group g holds.
func (s Ext4Size) overhead(g uint64) uint64 {
	if !s.hasSuper(g) {
		return s.metaGDB(g)
	}
	return s.metaGDB(g) + 1 + s.reservedGDT
}

// metaGDB is ext4_bg_num_gdb: the group descriptor blocks in group g.
func (s Ext4Size) metaGDB(g uint64) uint64 {
	perBlock := uint64(s.BlockSize) / s.descSize
	if !s.metaBG || g/perBlock < s.firstMetaBG {
		if !s.hasSuper(g) {
			return 0
		}
		if s.metaBG {
			return s.firstMetaBG
		}
		groups := (s.Blocks - s.firstDataBlock + s.blocksPerGroup - 1) / s.blocksPerGroup
		return (groups + perBlock - 1) / perBlock
	}
	if i := g % perBlock; i == 0 || i == 1 || i == perBlock-1 {
		return 1
	}
	return 0
}

// hasSuper is ext4_bg_has_super: whether group g holds a superblock copy.
func (s Ext4Size) hasSuper(g uint64) bool {
	switch {
	case g == 0:
		return true
	case s.sparseSuper2:
		return g == s.backupBGs[0] || g == s.backupBGs[1]
	case g <= 1 || !s.sparseSuper:
		return true
	case g&1 == 0:
		return false
	}
	return isPower(g, 3) || isPower(g, 5) || isPower(g, 7)
}

// isPower reports whether n is a power of b.
func isPower(n, b uint64) bool {
	for n%b == 0 {
		n /= b
	}
	return n == 1
}
