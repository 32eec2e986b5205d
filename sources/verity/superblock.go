package verity

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// SuperblockSize is the size of the verity superblock at offset 0 of the
// hash device.
const SuperblockSize = 512

// superblockMagic starts every verity superblock.
var superblockMagic = [8]byte{'v', 'e', 'r', 'i', 't', 'y', 0, 0}

// Byte offsets of the superblock fields (all integers little-endian).
const (
	offMagic         = 0
	offVersion       = 8
	offHashType      = 12
	offUUID          = 16
	offAlgorithm     = 32
	offDataBlockSize = 64
	offHashBlockSize = 68
	offDataBlocks    = 72
	offSaltSize      = 80
	offSalt          = 88
	algorithmSize    = 32
	superblockV1     = 1
)

// Superblock is the verity superblock that `veritysetup format` writes at
// the start of the hash device. It records everything needed to rebuild the
// tree except the root hash.
type Superblock struct {
	// Version is the superblock version; only 1 exists.
	Version uint32
	// HashType is 1 for the salted normal format, 0 for Chromium OS.
	HashType uint32
	// UUID identifies the hash device.
	UUID [16]byte
	// Algorithm is the hash algorithm name as the kernel spells it
	// ("sha256").
	Algorithm string
	// DataBlockSize and HashBlockSize are in bytes.
	DataBlockSize uint32
	HashBlockSize uint32
	// DataBlocks is the number of data blocks the tree covers.
	DataBlocks uint64
	// Salt is prepended (hash type 1) to every hashed block.
	Salt []byte
}

// FieldError is a problem with one superblock field. It matches
// ErrBadSuperblock with errors.Is.
type FieldError struct {
	Field   string // "magic", "version", "hash_type", "algorithm", "data_block_size", ...
	Problem string // what was found and what was expected
}

func (e *FieldError) Error() string { return "verity superblock: " + e.Field + ": " + e.Problem }

// Is reports whether target is ErrBadSuperblock.
func (e *FieldError) Is(target error) bool { return target == ErrBadSuperblock }

// ParseSuperblock decodes and checks the first SuperblockSize bytes of b.
// Every bad field is reported at once, as *FieldError values joined with
// errors.Join; if the magic is wrong nothing else is checked. Padding bytes
// are ignored.
func ParseSuperblock(b []byte) (*Superblock, error) {
	if len(b) < SuperblockSize {
		return nil, &FieldError{Field: "size", Problem: fmt.Sprintf("%d bytes, want at least %d", len(b), SuperblockSize)}
	}
	if !bytes.Equal(b[offMagic:offMagic+8], superblockMagic[:]) {
		return nil, &FieldError{Field: "magic", Problem: fmt.Sprintf("got %q, want %q", b[offMagic:offMagic+8], superblockMagic[:])}
	}
	le := binary.LittleEndian
	s := &Superblock{
		Version:       le.Uint32(b[offVersion:]),
		HashType:      le.Uint32(b[offHashType:]),
		DataBlockSize: le.Uint32(b[offDataBlockSize:]),
		HashBlockSize: le.Uint32(b[offHashBlockSize:]),
		DataBlocks:    le.Uint64(b[offDataBlocks:]),
	}
	copy(s.UUID[:], b[offUUID:offUUID+16])

	var errs []error
	alg := b[offAlgorithm : offAlgorithm+algorithmSize]
	if n := bytes.IndexByte(alg, 0); n < 0 {
		errs = append(errs, &FieldError{Field: "algorithm", Problem: "not NUL-terminated within 32 bytes"})
	} else {
		s.Algorithm = string(alg[:n])
	}
	saltSize := int(le.Uint16(b[offSaltSize:]))
	if saltSize > MaxSaltSize {
		errs = append(errs, &FieldError{Field: "salt_size", Problem: fmt.Sprintf("%d, want at most %d", saltSize, MaxSaltSize)})
	} else {
		s.Salt = bytes.Clone(b[offSalt : offSalt+saltSize])
		if s.Salt == nil {
			s.Salt = []byte{}
		}
	}
	if err := s.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// validate checks every field except the salt size of an already decoded
// superblock and joins the problems.
func (s *Superblock) validate() error {
	var errs []error
	if s.Version != superblockV1 {
		errs = append(errs, &FieldError{Field: "version", Problem: fmt.Sprintf("%d, want %d", s.Version, superblockV1)})
	}
	if s.HashType > 1 {
		errs = append(errs, &FieldError{Field: "hash_type", Problem: fmt.Sprintf("%d, want 0 or 1", s.HashType)})
	}
	if err := checkAlgorithmName(s.Algorithm); err != nil {
		errs = append(errs, &FieldError{Field: "algorithm", Problem: err.Error()})
	}
	if err := checkBlockSize(s.DataBlockSize); err != nil {
		errs = append(errs, &FieldError{Field: "data_block_size", Problem: err.Error()})
	}
	if err := checkBlockSize(s.HashBlockSize); err != nil {
		errs = append(errs, &FieldError{Field: "hash_block_size", Problem: err.Error()})
	}
	if s.DataBlocks == 0 {
		errs = append(errs, &FieldError{Field: "data_blocks", Problem: "0, want at least 1"})
	}
	if len(s.Salt) > MaxSaltSize {
		errs = append(errs, &FieldError{Field: "salt_size", Problem: fmt.Sprintf("%d, want at most %d", len(s.Salt), MaxSaltSize)})
	}
	return errors.Join(errs...)
}

// checkAlgorithmName accepts the names the kernel crypto API uses: 1 to 31
// characters of lowercase letters, digits, '-' and '_'.
func checkAlgorithmName(name string) error {
	if name == "" || len(name) >= algorithmSize {
		return fmt.Errorf("%q, want a name of 1 to %d characters such as %q", name, algorithmSize-1, Algorithm)
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%q contains %q, want lowercase letters, digits, '-' or '_'", name, c)
		}
	}
	return nil
}

// MarshalBinary encodes s as the SuperblockSize bytes veritysetup writes,
// with zero padding. It reports the same problems as ParseSuperblock.
func (s *Superblock) MarshalBinary() ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	b := make([]byte, SuperblockSize)
	le := binary.LittleEndian
	copy(b[offMagic:], superblockMagic[:])
	le.PutUint32(b[offVersion:], s.Version)
	le.PutUint32(b[offHashType:], s.HashType)
	copy(b[offUUID:], s.UUID[:])
	copy(b[offAlgorithm:offAlgorithm+algorithmSize], s.Algorithm)
	le.PutUint32(b[offDataBlockSize:], s.DataBlockSize)
	le.PutUint32(b[offHashBlockSize:], s.HashBlockSize)
	le.PutUint64(b[offDataBlocks:], s.DataBlocks)
	le.PutUint16(b[offSaltSize:], uint16(len(s.Salt)))
	copy(b[offSalt:], s.Salt)
	return b, nil
}

// ReadSuperblock reads and parses the superblock at offset 0 of hash.
func ReadSuperblock(ctx context.Context, hash io.ReaderAt) (*Superblock, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := make([]byte, SuperblockSize)
	if err := readFull(hash, b, 0); err != nil {
		return nil, fmt.Errorf("read verity superblock: %w", err)
	}
	return ParseSuperblock(b) // its errors name the superblock and field
}

// readFull reads len(b) bytes at off, treating a short read as
// io.ErrUnexpectedEOF.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at offset %d: %w", len(b), off, err)
}
