package verity

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// RootHash returns the root hash of the tree on the hash device: the
// salted digest of its top level, which is one block right after the
// superblock. It trusts the device (nothing below the top level is read):
// the build uses it to publish the root hash of a hash image it made, and
// a host that needs to know a tree is intact calls Verify with a root hash
// from elsewhere. A tree of a single data block has no levels (its root
// hash is that block's digest) and gives an error.
func RootHash(ctx context.Context, hash io.ReaderAt) ([]byte, error) {
	sb, err := ReadSuperblock(ctx, hash)
	if err != nil {
		return nil, err
	}
	if sb.HashType != HashType {
		return nil, fmt.Errorf("read root hash: hash type %d: %w", sb.HashType, errors.ErrUnsupported)
	}
	if sb.Algorithm != Algorithm {
		return nil, fmt.Errorf("read root hash: algorithm %q: %w", sb.Algorithm, errors.ErrUnsupported)
	}
	g, err := newGeometry(sb.DataBlockSize, sb.HashBlockSize, sb.DataBlocks)
	if err != nil {
		return nil, fmt.Errorf("read root hash: %w", err)
	}
	if g.levels() == 0 {
		return nil, fmt.Errorf("read root hash: %w: one data block, no tree on the hash device", ErrInvalidParams)
	}
	top := g.levels() - 1
	block := make([]byte, g.hashBlockSize)
	if err := readFull(hash, block, int64(g.levelStart[top])*g.hashBlockSize); err != nil {
		return nil, fmt.Errorf("read root hash: top hash block %d: %w", g.levelStart[top], err)
	}
	root := make([]byte, digestSize)
	newBlockHasher(sb.Salt).sum(root, block)
	return root, nil
}
