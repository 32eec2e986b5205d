package verity

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidParams marks bad format parameters or a bad data size.
	ErrInvalidParams = errors.New("invalid verity parameters")
	// ErrBadSuperblock marks a superblock that cannot be parsed; the
	// *FieldError values in the chain name the fields.
	ErrBadSuperblock = errors.New("bad verity superblock")
	// ErrCorrupt marks data or a hash tree that does not match the root
	// hash; the *CorruptError in the chain names the first bad block.
	ErrCorrupt = errors.New("verity corruption")
)

// Area names the device a corrupt block lives on.
type Area string

// The two devices of a verity mapping.
const (
	AreaData Area = "data"
	AreaHash Area = "hash"
)

// CorruptError names the first block that failed verification. For the data
// area Block counts data blocks from 0; for the hash area it counts hash
// blocks from the start of the hash device, so the superblock is block 0 and
// the top of the tree is block 1. It matches ErrCorrupt with errors.Is.
type CorruptError struct {
	Area  Area
	Block uint64
	// Root is set when the block is the top of the tree (or the only data
	// block) and its digest differs from the root hash: either the block or
	// the root hash, or the salt it was computed with, is wrong.
	Root bool
}

func (e *CorruptError) Error() string {
	if e.Root {
		return fmt.Sprintf("%s block %d does not match the root hash", e.Area, e.Block)
	}
	return fmt.Sprintf("%s block %d is corrupted", e.Area, e.Block)
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }
