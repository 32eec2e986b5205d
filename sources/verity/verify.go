package verity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// Verify checks the data against the hash device and the root hash, as
// `veritysetup verify` does. It reads the superblock from block 0 of hash
// (the salt, block sizes and block count come from there), checks every
// tree block from the top down and then every data block. dataSize is the
// size of the data device; it may be larger than the area the tree covers.
//
// A mismatch returns a *CorruptError (matching ErrCorrupt) naming the first
// bad block: upper tree levels are checked first, then the data in order, so
// a corrupt data block is reported as a data block and a corrupt tree block
// as a hash block. A superblock with a hash type other than 1 or an
// algorithm other than sha256 gives an error matching errors.ErrUnsupported.
func Verify(ctx context.Context, data io.ReaderAt, dataSize int64, hash io.ReaderAt, rootHash []byte) error {
	sb, err := ReadSuperblock(ctx, hash)
	if err != nil {
		return err
	}
	if sb.HashType != HashType {
		return fmt.Errorf("verify hash tree: hash type %d: %w", sb.HashType, errors.ErrUnsupported)
	}
	if sb.Algorithm != Algorithm {
		return fmt.Errorf("verify hash tree: algorithm %q: %w", sb.Algorithm, errors.ErrUnsupported)
	}
	if len(rootHash) != digestSize {
		return fmt.Errorf("%w: root hash is %d bytes, want %d", ErrInvalidParams, len(rootHash), digestSize)
	}
	if want := uint64(sb.DataBlockSize) * sb.DataBlocks; dataSize < 0 || uint64(dataSize) < want || want/sb.DataBlocks != uint64(sb.DataBlockSize) {
		return fmt.Errorf("%w: data is %d bytes, the superblock covers %d blocks of %d bytes", ErrInvalidParams, dataSize, sb.DataBlocks, sb.DataBlockSize)
	}
	g, err := newGeometry(sb.DataBlockSize, sb.HashBlockSize, sb.DataBlocks)
	if err != nil {
		return fmt.Errorf("verify hash tree: %w", err)
	}
	return verifyTree(ctx, g, sb.Salt, data, hash, rootHash)
}

// verifyTree checks the tree from the root down, then the data.
func verifyTree(ctx context.Context, g *geometry, salt []byte, data io.ReaderAt, hash io.ReaderAt, root []byte) error {
	h := newBlockHasher(salt)
	digest := make([]byte, digestSize)
	if g.levels() == 0 {
		w := g.newWorker(salt)
		got, err := g.hashData(w, data, 0, 1, 1)
		if err != nil {
			return err
		}
		if !bytes.Equal(got[:digestSize], root) {
			return &CorruptError{Area: AreaData, Block: 0, Root: true}
		}
		return nil
	}

	// Upper levels, top first: each block's digest must match its entry in
	// the (already verified) level above, or the root hash.
	hbs := g.hashBlockSize
	top := g.levels() - 1
	parent := root
	for i := top; i >= 1; i-- {
		if err := ctx.Err(); err != nil {
			return err
		}
		buf := make([]byte, int64(g.levelBlocks[i])*hbs)
		if err := readFull(hash, buf, int64(g.levelStart[i])*hbs); err != nil {
			return fmt.Errorf("read hash blocks %d-%d: %w", g.levelStart[i], g.levelStart[i]+g.levelBlocks[i]-1, err)
		}
		for j := range g.levelBlocks[i] {
			h.sum(digest, buf[int64(j)*hbs:int64(j+1)*hbs])
			if !bytes.Equal(digest, parent[j*digestSize:(j+1)*digestSize]) {
				return &CorruptError{Area: AreaHash, Block: g.levelStart[i] + j, Root: i == top}
			}
		}
		parent = buf
	}

	// Level 0 and the data, in parallel.
	nseg := (g.levelBlocks[0] + g.segmentLeaves() - 1) / g.segmentLeaves()
	type verifier struct {
		*worker
		stored []byte
	}
	return forEachSegment(ctx, nseg,
		func() verifier {
			return verifier{worker: g.newWorker(salt), stored: make([]byte, int64(g.segmentLeaves())*hbs)}
		},
		func(ctx context.Context, w verifier, seg uint64) error {
			first, end, dataFirst, dataEnd := g.segmentRange(seg)
			stored := w.stored[:int64(end-first)*hbs]
			if err := readFull(hash, stored, int64(g.levelStart[0]+first)*hbs); err != nil {
				return fmt.Errorf("read hash blocks %d-%d: %w", g.levelStart[0]+first, g.levelStart[0]+end-1, err)
			}
			for j := range end - first {
				w.hasher.sum(w.digest, stored[int64(j)*hbs:int64(j+1)*hbs])
				k := first + j
				if !bytes.Equal(w.digest, parent[k*digestSize:(k+1)*digestSize]) {
					return &CorruptError{Area: AreaHash, Block: g.levelStart[0] + k, Root: top == 0}
				}
			}
			got, err := g.hashData(w.worker, data, dataFirst, dataEnd, end-first)
			if err != nil {
				return err
			}
			for b := range dataEnd - dataFirst {
				e := b * digestSize
				if !bytes.Equal(got[e:e+digestSize], stored[e:e+digestSize]) {
					return &CorruptError{Area: AreaData, Block: dataFirst + b}
				}
			}
			return nil
		})
}
