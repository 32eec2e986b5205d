package vmdk

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Format constants of the VMware sparse extent.
const (
	// SectorSize is the unit of every offset and size in a VMDK header.
	SectorSize = 512
	// GrainSectors is the grain size used by this writer (64 KiB).
	GrainSectors = 128
	// GrainBytes is GrainSectors in bytes.
	GrainBytes = GrainSectors * SectorSize
	// GTEsPerGT is the number of entries in one grain table.
	GTEsPerGT = 512
	// GDAtEnd in a header's GDOffset says the grain directory offset is in
	// the footer.
	GDAtEnd = ^uint64(0)

	// Header flags.
	FlagNewlineDetect = 1 << 0
	FlagRedundantGT   = 1 << 1
	FlagZeroGrain     = 1 << 2
	FlagCompressed    = 1 << 16
	FlagMarkers       = 1 << 17

	// CompressDeflate is the only compression algorithm VMDK defines
	// (zlib-wrapped deflate, RFC 1950).
	CompressDeflate = 1

	magic = 0x564d444b // "KDMV" on disk
)

// Marker types of a streamOptimized file.
const (
	markerEOS    = 0
	markerGT     = 1
	markerGD     = 2
	markerFooter = 3
)

// ErrBadHeader marks a sparse extent header that cannot be parsed.
var ErrBadHeader = errors.New("invalid VMDK sparse extent header")

// Header is the 512-byte sparse extent header (and footer). Offsets and sizes
// are in sectors.
type Header struct {
	Version           uint32
	Flags             uint32
	Capacity          uint64
	GrainSize         uint64
	DescriptorOffset  uint64
	DescriptorSize    uint64
	NumGTEsPerGT      uint32
	RGDOffset         uint64
	GDOffset          uint64
	Overhead          uint64
	UncleanShutdown   bool
	CompressAlgorithm uint16
}

// MarshalBinary encodes h as one 512-byte sector. It never fails.
func (h Header) MarshalBinary() ([]byte, error) {
	b := make([]byte, SectorSize)
	h.put(b)
	return b, nil
}

func (h Header) put(b []byte) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], magic)
	le.PutUint32(b[4:], h.Version)
	le.PutUint32(b[8:], h.Flags)
	le.PutUint64(b[12:], h.Capacity)
	le.PutUint64(b[20:], h.GrainSize)
	le.PutUint64(b[28:], h.DescriptorOffset)
	le.PutUint64(b[36:], h.DescriptorSize)
	le.PutUint32(b[44:], h.NumGTEsPerGT)
	le.PutUint64(b[48:], h.RGDOffset)
	le.PutUint64(b[56:], h.GDOffset)
	le.PutUint64(b[64:], h.Overhead)
	if h.UncleanShutdown {
		b[72] = 1
	}
	// The newline-detection characters let readers spot text-mode mangling.
	b[73], b[74], b[75], b[76] = '\n', ' ', '\r', '\n'
	le.PutUint16(b[77:], h.CompressAlgorithm)
}

// ParseHeader decodes and checks a sparse extent header from the first 512
// bytes of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < SectorSize {
		return Header{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadHeader, len(b), SectorSize)
	}
	le := binary.LittleEndian
	if m := le.Uint32(b[0:]); m != magic {
		return Header{}, fmt.Errorf("%w: magic %#08x, want %#08x", ErrBadHeader, m, magic)
	}
	h := Header{
		Version:           le.Uint32(b[4:]),
		Flags:             le.Uint32(b[8:]),
		Capacity:          le.Uint64(b[12:]),
		GrainSize:         le.Uint64(b[20:]),
		DescriptorOffset:  le.Uint64(b[28:]),
		DescriptorSize:    le.Uint64(b[36:]),
		NumGTEsPerGT:      le.Uint32(b[44:]),
		RGDOffset:         le.Uint64(b[48:]),
		GDOffset:          le.Uint64(b[56:]),
		Overhead:          le.Uint64(b[64:]),
		UncleanShutdown:   b[72] != 0,
		CompressAlgorithm: le.Uint16(b[77:]),
	}
	var errs []error
	if h.Version < 1 || h.Version > 3 {
		errs = append(errs, fmt.Errorf("version %d, want 1..3", h.Version))
	}
	if h.GrainSize < 8 || h.GrainSize&(h.GrainSize-1) != 0 {
		errs = append(errs, fmt.Errorf("grain size %d sectors, want a power of two >= 8", h.GrainSize))
	}
	if h.NumGTEsPerGT == 0 || h.NumGTEsPerGT > 512 {
		errs = append(errs, fmt.Errorf("%d grain table entries, want 1..512", h.NumGTEsPerGT))
	}
	if h.Flags&FlagNewlineDetect != 0 && (b[73] != '\n' || b[74] != ' ' || b[75] != '\r' || b[76] != '\n') {
		errs = append(errs, errors.New("newline detection characters damaged (file transferred in text mode?)"))
	}
	if h.Flags&FlagCompressed != 0 && h.CompressAlgorithm != CompressDeflate {
		errs = append(errs, fmt.Errorf("compression algorithm %d, want %d (deflate)", h.CompressAlgorithm, CompressDeflate))
	}
	if len(errs) > 0 {
		return Header{}, fmt.Errorf("%w: %w", ErrBadHeader, errors.Join(errs...))
	}
	return h, nil
}

// marker encodes a metadata marker sector (grain table, grain directory,
// footer or end of stream).
func marker(b []byte, sectors uint64, typ uint32) {
	clear(b[:SectorSize])
	binary.LittleEndian.PutUint64(b[0:], sectors)
	binary.LittleEndian.PutUint32(b[12:], typ)
}
