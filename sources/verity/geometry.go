package verity

import (
	"errors"
	"fmt"
	"math/bits"
)

// Fixed properties of the format this package writes.
const (
	// DefaultBlockSize is the data and hash block size used when Params
	// leaves them zero; it is what Petrel images use.
	DefaultBlockSize = 4096
	// HashType is the verity hash type written: 1, the salted "normal"
	// format (0 is the Chromium OS format, which this package does not
	// write or verify).
	HashType = 1
	// Algorithm is the only hash algorithm this package computes.
	Algorithm = "sha256"
	// HashStart is the hash block at which the tree begins: block 0 holds
	// the superblock.
	HashStart = 1
	// MaxSaltSize is the largest salt the superblock can hold.
	MaxSaltSize = 256

	digestSize   = 32 // SHA-256
	minBlockSize = 512
	maxBlockSize = 512 << 10 // veritysetup's limit
	maxLevels    = 63        // veritysetup's VERITY_MAX_LEVELS
)

// Params are the format parameters of a hash tree. The zero block sizes mean
// DefaultBlockSize.
type Params struct {
	// DataBlockSize is the size in bytes of a data block: a power of two
	// from 512 to 512 KiB (the kernel further requires at most the page
	// size).
	DataBlockSize uint32
	// HashBlockSize is the size in bytes of a hash block, with the same
	// limits.
	HashBlockSize uint32
	// Salt is prepended to every hashed block: 1 to 256 bytes. Use
	// DeriveSalt for reproducible builds.
	Salt []byte
	// UUID is recorded in the superblock; it must not be all zeros. Use
	// DeriveUUID for reproducible builds.
	UUID [16]byte
}

// withDefaults returns p with zero block sizes replaced by DefaultBlockSize.
func (p Params) withDefaults() Params {
	if p.DataBlockSize == 0 {
		p.DataBlockSize = DefaultBlockSize
	}
	if p.HashBlockSize == 0 {
		p.HashBlockSize = DefaultBlockSize
	}
	return p
}

// validate reports every problem with p at once, without wrapping
// ErrInvalidParams.
func (p Params) validate() error {
	var errs []error
	if err := checkBlockSize(p.DataBlockSize); err != nil {
		errs = append(errs, fmt.Errorf("DataBlockSize: %w", err))
	}
	if err := checkBlockSize(p.HashBlockSize); err != nil {
		errs = append(errs, fmt.Errorf("HashBlockSize: %w", err))
	}
	switch {
	case len(p.Salt) == 0:
		errs = append(errs, errors.New("Salt: empty, want 1 to 256 bytes (see DeriveSalt)"))
	case len(p.Salt) > MaxSaltSize:
		errs = append(errs, fmt.Errorf("Salt: %d bytes, want at most %d", len(p.Salt), MaxSaltSize))
	}
	if p.UUID == [16]byte{} {
		errs = append(errs, errors.New("UUID: all zeros (see DeriveUUID)"))
	}
	return errors.Join(errs...)
}

func checkBlockSize(n uint32) error {
	if n < minBlockSize || n > maxBlockSize || n&(n-1) != 0 {
		return fmt.Errorf("%d, want a power of two from %d to %d", n, minBlockSize, maxBlockSize)
	}
	return nil
}

// geometry is where each level of a tree lives on the hash device.
// Level 0 holds the digests of the data blocks; the last level is a single
// block whose digest is the root hash. Levels are stored top level first,
// starting at HashStart, as veritysetup and the kernel expect.
type geometry struct {
	dataBlockSize int64
	hashBlockSize int64
	dataBlocks    uint64
	perBlock      uint64   // digests per hash block
	levelStart    []uint64 // first hash block of each level on the hash device
	levelBlocks   []uint64 // number of hash blocks in each level
	hashBlocks    uint64   // tree blocks, without the superblock block
}

// newGeometry lays out the tree for dataBlocks blocks. Block sizes must
// already be valid.
func newGeometry(dataBlockSize, hashBlockSize uint32, dataBlocks uint64) (*geometry, error) {
	if dataBlocks == 0 {
		return nil, errors.New("no data blocks")
	}
	g := &geometry{
		dataBlockSize: int64(dataBlockSize),
		hashBlockSize: int64(hashBlockSize),
		dataBlocks:    dataBlocks,
		perBlock:      uint64(hashBlockSize) / digestSize,
	}
	shift := uint(bits.Len64(g.perBlock) - 1) // perBlock is a power of two
	levels := 0
	for shift*uint(levels) < 64 && (dataBlocks-1)>>(shift*uint(levels)) != 0 {
		levels++
	}
	if levels > maxLevels {
		return nil, fmt.Errorf("%d data blocks need %d tree levels, more than %d", dataBlocks, levels, maxLevels)
	}
	g.levelStart = make([]uint64, levels)
	g.levelBlocks = make([]uint64, levels)
	pos := uint64(HashStart)
	for i := levels - 1; i >= 0; i-- {
		s := shift * uint(i+1)
		var n uint64
		if s >= 64 {
			n = 1
		} else {
			n = (dataBlocks-1)>>s + 1 // ceil(dataBlocks / perBlock^(i+1))
		}
		g.levelStart[i] = pos
		g.levelBlocks[i] = n
		if pos+n < pos {
			return nil, fmt.Errorf("%d data blocks overflow the hash device", dataBlocks)
		}
		pos += n
	}
	g.hashBlocks = pos - HashStart
	if pos > uint64(1<<63-1)/uint64(hashBlockSize) {
		return nil, fmt.Errorf("%d data blocks need a hash device larger than 2^63 bytes", dataBlocks)
	}
	return g, nil
}

// levels is the number of tree levels; 0 when there is a single data block,
// whose digest is then the root hash.
func (g *geometry) levels() int { return len(g.levelBlocks) }

// hashSize is the number of bytes the hash device needs: the superblock
// block and the tree.
func (g *geometry) hashSize() int64 {
	return int64(HashStart+g.hashBlocks) * g.hashBlockSize
}

// dataBlockCount checks that size is a positive multiple of blockSize and
// returns the number of blocks. Its error does not wrap ErrInvalidParams.
func dataBlockCount(size int64, blockSize uint32) (uint64, error) {
	if size <= 0 {
		return 0, fmt.Errorf("data size %d, want more than 0", size)
	}
	if size%int64(blockSize) != 0 {
		return 0, fmt.Errorf("data size %d is not a multiple of the data block size %d", size, blockSize)
	}
	return uint64(size / int64(blockSize)), nil
}
