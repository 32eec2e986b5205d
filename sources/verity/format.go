package verity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
)

// Tree describes a hash tree that Format wrote.
type Tree struct {
	// RootHash is the SHA-256 digest of the top tree block (of the only
	// data block when there is one).
	RootHash []byte
	// Salt is the salt the tree was computed with (a copy of Params.Salt).
	Salt []byte
	// DataBlocks is the number of data blocks covered.
	DataBlocks uint64
	// HashBlocks is the number of tree blocks, without the superblock
	// block (veritysetup's "Hash blocks").
	HashBlocks uint64
	// HashSize is the number of bytes written to the hash device:
	// superblock block and tree.
	HashSize int64
	// Params are the parameters used, with defaults filled in.
	Params Params
}

// HashSize returns the number of bytes a hash device needs for dataSize
// bytes of data: the superblock block plus the tree. dataSize must be a
// positive multiple of the data block size. Only the block sizes of p are
// used.
func HashSize(dataSize int64, p Params) (int64, error) {
	p = p.withDefaults()
	var errs []error
	if err := checkBlockSize(p.DataBlockSize); err != nil {
		errs = append(errs, fmt.Errorf("DataBlockSize: %w", err))
	}
	if err := checkBlockSize(p.HashBlockSize); err != nil {
		errs = append(errs, fmt.Errorf("HashBlockSize: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidParams, err)
	}
	n, err := dataBlockCount(dataSize, p.DataBlockSize)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidParams, err)
	}
	g, err := newGeometry(p.DataBlockSize, p.HashBlockSize, n)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidParams, err)
	}
	return g.hashSize(), nil
}

// Format computes the hash tree of the first dataSize bytes of data and
// writes it to hash: the superblock in block 0 (the rest of that block
// zeroed) and the tree from block 1, HashSize bytes in all. dataSize must be
// a positive multiple of the data block size. The superblock is written
// last. Format does not sync or truncate hash; a caller that needs the file
// to be all-or-nothing writes to a temporary file, syncs and renames it.
func Format(ctx context.Context, data io.ReaderAt, dataSize int64, hash io.WriterAt, p Params) (*Tree, error) {
	p = p.withDefaults()
	perr := p.validate()
	nblocks, serr := dataBlockCount(dataSize, p.DataBlockSize)
	if err := errors.Join(perr, serr); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidParams, err)
	}
	g, err := newGeometry(p.DataBlockSize, p.HashBlockSize, nblocks)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidParams, err)
	}
	root, err := buildTree(ctx, g, p.Salt, data, hash)
	if err != nil {
		return nil, err
	}
	p.Salt = bytes.Clone(p.Salt)
	t := &Tree{
		RootHash:   root,
		Salt:       p.Salt,
		DataBlocks: nblocks,
		HashBlocks: g.hashBlocks,
		HashSize:   g.hashSize(),
		Params:     p,
	}
	sb, err := t.Superblock().MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode verity superblock: %w", err)
	}
	block0 := make([]byte, p.HashBlockSize)
	copy(block0, sb)
	if err := writeFull(hash, block0, 0); err != nil {
		return nil, fmt.Errorf("write verity superblock: %w", err)
	}
	return t, nil
}

// Superblock returns the superblock that describes t.
func (t *Tree) Superblock() *Superblock {
	return &Superblock{
		Version:       superblockV1,
		HashType:      HashType,
		UUID:          t.Params.UUID,
		Algorithm:     Algorithm,
		DataBlockSize: t.Params.DataBlockSize,
		HashBlockSize: t.Params.HashBlockSize,
		DataBlocks:    t.DataBlocks,
		Salt:          bytes.Clone(t.Salt),
	}
}

// Table returns the device-mapper table line that maps the data device
// read-only through the tree:
//
//	0 <sectors> verity 1 <dataDev> <hashDev> <dbs> <hbs> <blocks> 1 sha256 <root> <salt> [<n> <opts>...]
//
// opts are the optional verity arguments, such as "restart_on_corruption"
// and "ignore_zero_blocks"; their count is prepended when there are any.
func (t *Tree) Table(dataDev, hashDev string, opts ...string) string {
	var b strings.Builder
	sectors := t.DataBlocks * uint64(t.Params.DataBlockSize) / 512
	fmt.Fprintf(&b, "0 %d verity %d %s %s %d %d %d %d %s %s %s",
		sectors, HashType, dataDev, hashDev,
		t.Params.DataBlockSize, t.Params.HashBlockSize, t.DataBlocks, HashStart,
		Algorithm, hex.EncodeToString(t.RootHash), saltString(t.Salt))
	if len(opts) > 0 {
		b.WriteString(" " + strconv.Itoa(len(opts)) + " " + strings.Join(opts, " "))
	}
	return b.String()
}

// saltString is the salt as the table spells it: hex, or "-" when empty.
func saltString(salt []byte) string {
	if len(salt) == 0 {
		return "-"
	}
	return hex.EncodeToString(salt)
}

// blockHasher computes salted digests. It is not safe for concurrent use;
// each worker owns one.
type blockHasher struct {
	h    hash.Hash
	salt []byte
}

func newBlockHasher(salt []byte) *blockHasher {
	return &blockHasher{h: sha256.New(), salt: salt}
}

// sum writes SHA-256(salt || block) into dst[:digestSize].
func (bh *blockHasher) sum(dst, block []byte) {
	bh.h.Reset()
	bh.h.Write(bh.salt)
	bh.h.Write(block)
	bh.h.Sum(dst[:0:digestSize])
}

// worker is the per-goroutine state of a tree pass: a hasher and buffers
// reused for every segment, so hashing allocates nothing per block.
type worker struct {
	hasher *blockHasher
	data   []byte // one read chunk of data blocks
	leaves []byte // the level-0 hash blocks of one segment
	digest []byte // scratch digest for verification
}

func (g *geometry) newWorker(salt []byte) *worker {
	chunk := max(readChunkBytes/g.dataBlockSize, 1) * g.dataBlockSize
	chunk = min(chunk, int64(g.segmentLeaves()*g.perBlock)*g.dataBlockSize)
	return &worker{
		hasher: newBlockHasher(salt),
		data:   make([]byte, chunk),
		leaves: make([]byte, int64(g.segmentLeaves())*g.hashBlockSize),
		digest: make([]byte, digestSize),
	}
}

// segmentRange returns the level-0 blocks [first, end) and data blocks
// [dataFirst, dataEnd) of segment seg.
func (g *geometry) segmentRange(seg uint64) (first, end, dataFirst, dataEnd uint64) {
	per := g.segmentLeaves()
	first = seg * per
	end = min(first+per, g.levelBlocks[0])
	return first, end, first * g.perBlock, min(end*g.perBlock, g.dataBlocks)
}

// hashData fills w.leaves with the digests of data blocks [first, end),
// zero-padding the rest of the last leaf block, and returns the used part
// of w.leaves (whole hash blocks).
func (g *geometry) hashData(w *worker, data io.ReaderAt, first, end uint64, leafBlocks uint64) ([]byte, error) {
	leaves := w.leaves[:leafBlocks*uint64(g.hashBlockSize)]
	clear(leaves[(end-first)*digestSize:])
	chunkBlocks := uint64(int64(len(w.data)) / g.dataBlockSize)
	for b := first; b < end; {
		n := min(chunkBlocks, end-b)
		buf := w.data[:int64(n)*g.dataBlockSize]
		if err := readFull(data, buf, int64(b)*g.dataBlockSize); err != nil {
			return nil, fmt.Errorf("read data blocks %d-%d: %w", b, b+n-1, err)
		}
		out := leaves[(b-first)*digestSize:]
		for i := range n {
			w.hasher.sum(out[i*digestSize:], buf[int64(i)*g.dataBlockSize:int64(i+1)*g.dataBlockSize])
		}
		b += n
	}
	return leaves, nil
}

// buildTree writes every tree level to hash and returns the root hash.
func buildTree(ctx context.Context, g *geometry, salt []byte, data io.ReaderAt, hash io.WriterAt) ([]byte, error) {
	if g.levels() == 0 {
		w := g.newWorker(salt)
		leaves, err := g.hashData(w, data, 0, 1, 1)
		if err != nil {
			return nil, err
		}
		return bytes.Clone(leaves[:digestSize]), nil
	}

	// Level 0, in parallel: each segment reads its data, writes its leaf
	// blocks and records their digests, which form level 1.
	hbs := g.hashBlockSize
	up := make([]byte, g.levelBlocks[0]*digestSize)
	nseg := (g.levelBlocks[0] + g.segmentLeaves() - 1) / g.segmentLeaves()
	err := forEachSegment(ctx, nseg, func() *worker { return g.newWorker(salt) },
		func(ctx context.Context, w *worker, seg uint64) error {
			first, end, dataFirst, dataEnd := g.segmentRange(seg)
			leaves, err := g.hashData(w, data, dataFirst, dataEnd, end-first)
			if err != nil {
				return err
			}
			for j := range end - first {
				w.hasher.sum(up[(first+j)*digestSize:], leaves[int64(j)*hbs:int64(j+1)*hbs])
			}
			if err := writeFull(hash, leaves, int64(g.levelStart[0]+first)*hbs); err != nil {
				return fmt.Errorf("write hash blocks %d-%d: %w", g.levelStart[0]+first, g.levelStart[0]+end-1, err)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}

	// Upper levels are 1/128 of the work or less: one goroutine.
	h := newBlockHasher(salt)
	for i := 1; i < g.levels(); i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		blocks := g.levelBlocks[i]
		buf := make([]byte, int64(blocks)*hbs)
		copy(buf, up)
		next := make([]byte, blocks*digestSize)
		for j := range blocks {
			h.sum(next[j*digestSize:], buf[int64(j)*hbs:int64(j+1)*hbs])
		}
		if err := writeFull(hash, buf, int64(g.levelStart[i])*hbs); err != nil {
			return nil, fmt.Errorf("write hash blocks %d-%d: %w", g.levelStart[i], g.levelStart[i]+blocks-1, err)
		}
		up = next
	}
	return up[:digestSize:digestSize], nil
}

// writeFull writes b at off, treating a short write as io.ErrShortWrite.
func writeFull(w io.WriterAt, b []byte, off int64) error {
	n, err := w.WriteAt(b, off)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}
