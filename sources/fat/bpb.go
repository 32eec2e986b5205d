package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Type is the FAT variant, decided by the cluster count as the
// specification (Microsoft FAT32 File System Specification 1.03) demands.
type Type int

// FAT variants.
const (
	FAT12 Type = 12
	FAT16 Type = 16
	FAT32 Type = 32
)

func (t Type) String() string { return fmt.Sprintf("FAT%d", int(t)) }

// Cluster-count limits that decide the FAT type.
const (
	MaxFAT12Clusters = 4084
	MaxFAT16Clusters = 65524
)

// ErrInvalid is matched by every *FieldError.
var ErrInvalid = errors.New("invalid FAT filesystem")

// FieldError names a bad field of the boot sector or a directory.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Problem) }

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// FS is an opened FAT filesystem at an offset of a device or image.
type FS struct {
	r                 io.ReaderAt
	offset            int64 // partition start in r
	Type              Type
	BytesPerSector    int
	SectorsPerCluster int
	ReservedSectors   int
	NumFATs           int
	RootEntries       int // FAT12/16 fixed root directory entries
	FATSectors        int64
	TotalSectors      int64
	RootCluster       uint32 // FAT32
	Clusters          uint32 // count of data clusters (numbered 2..Clusters+1)
	firstDataSector   int64
	rootDirSector     int64
}

// Open parses the boot sector of the filesystem at offset in r.
func Open(r io.ReaderAt, offset int64) (*FS, error) {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, offset); err != nil {
		return nil, fmt.Errorf("read FAT boot sector at %d: %w", offset, err)
	}
	fs := &FS{r: r, offset: offset}
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: "boot sector " + field, Problem: fmt.Sprintf(format, args...)}
	}
	var errs []error
	if b[510] != 0x55 || b[511] != 0xAA {
		errs = append(errs, bad("Signature", "%#02x%02x, want 0x55aa", b[510], b[511]))
	}
	fs.BytesPerSector = int(binary.LittleEndian.Uint16(b[11:]))
	switch fs.BytesPerSector {
	case 512, 1024, 2048, 4096:
	default:
		errs = append(errs, bad("BytesPerSector", "%d, want 512, 1024, 2048 or 4096", fs.BytesPerSector))
	}
	fs.SectorsPerCluster = int(b[13])
	if spc := fs.SectorsPerCluster; spc == 0 || spc&(spc-1) != 0 {
		errs = append(errs, bad("SectorsPerCluster", "%d, want a power of two", spc))
	}
	fs.ReservedSectors = int(binary.LittleEndian.Uint16(b[14:]))
	if fs.ReservedSectors == 0 {
		errs = append(errs, bad("ReservedSectors", "0, want at least 1"))
	}
	fs.NumFATs = int(b[16])
	if fs.NumFATs == 0 {
		errs = append(errs, bad("NumFATs", "0, want at least 1"))
	}
	fs.RootEntries = int(binary.LittleEndian.Uint16(b[17:]))
	fs.TotalSectors = int64(binary.LittleEndian.Uint16(b[19:]))
	if fs.TotalSectors == 0 {
		fs.TotalSectors = int64(binary.LittleEndian.Uint32(b[32:]))
	}
	fs.FATSectors = int64(binary.LittleEndian.Uint16(b[22:]))
	if fs.FATSectors == 0 {
		fs.FATSectors = int64(binary.LittleEndian.Uint32(b[36:]))
		fs.RootCluster = binary.LittleEndian.Uint32(b[44:])
	}
	if fs.FATSectors == 0 {
		errs = append(errs, bad("FATSize", "0"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("open FAT filesystem at %d: %w", offset, err)
	}
	bps := int64(fs.BytesPerSector)
	rootDirSectors := (int64(fs.RootEntries)*32 + bps - 1) / bps
	fs.rootDirSector = int64(fs.ReservedSectors) + int64(fs.NumFATs)*fs.FATSectors
	fs.firstDataSector = fs.rootDirSector + rootDirSectors
	if fs.firstDataSector >= fs.TotalSectors {
		return nil, fmt.Errorf("open FAT filesystem at %d: %w", offset, bad("TotalSectors", "%d, but the data region starts at sector %d", fs.TotalSectors, fs.firstDataSector))
	}
	clusters := (fs.TotalSectors - fs.firstDataSector) / int64(fs.SectorsPerCluster)
	if clusters > 0x0FFFFFF5 {
		return nil, fmt.Errorf("open FAT filesystem at %d: %w", offset, bad("TotalSectors", "%d clusters, more than FAT32 allows", clusters))
	}
	fs.Clusters = uint32(clusters)
	switch {
	case clusters <= MaxFAT12Clusters:
		fs.Type = FAT12
	case clusters <= MaxFAT16Clusters:
		fs.Type = FAT16
	default:
		fs.Type = FAT32
	}
	// The FATs must hold an entry for every cluster.
	if need := (int64(fs.Clusters+2)*int64(fs.Type) + 8*bps - 1) / (8 * bps); fs.FATSectors < need {
		return nil, fmt.Errorf("open FAT filesystem at %d: %w", offset, bad("FATSize", "%d sectors, %d clusters need %d", fs.FATSectors, clusters, need))
	}
	if fs.Type == FAT32 {
		if !fs.validCluster(fs.RootCluster) {
			return nil, fmt.Errorf("open FAT filesystem at %d: %w", offset, bad("RootCluster", "%d, want 2..%d", fs.RootCluster, fs.Clusters+1))
		}
	} else if fs.RootEntries == 0 {
		return nil, fmt.Errorf("open FAT filesystem at %d: %w", offset, bad("RootEntries", "0 on %s", fs.Type))
	}
	return fs, nil
}

// ClusterBytes is the size of a cluster.
func (fs *FS) ClusterBytes() int64 { return int64(fs.SectorsPerCluster) * int64(fs.BytesPerSector) }

// clusterOffset returns the absolute offset of cluster c in r.
func (fs *FS) clusterOffset(c uint32) int64 {
	return fs.offset + (fs.firstDataSector+int64(c-2)*int64(fs.SectorsPerCluster))*int64(fs.BytesPerSector)
}

func (fs *FS) validCluster(c uint32) bool { return c >= 2 && c <= fs.Clusters+1 }

// next returns the FAT entry of cluster c and whether it ends the chain.
func (fs *FS) next(c uint32) (uint32, bool, error) {
	fatStart := fs.offset + int64(fs.ReservedSectors)*int64(fs.BytesPerSector)
	var b [4]byte
	switch fs.Type {
	case FAT12:
		off := int64(c) * 3 / 2
		if _, err := fs.r.ReadAt(b[:2], fatStart+off); err != nil {
			return 0, false, fmt.Errorf("read FAT entry %d: %w", c, err)
		}
		v := uint32(binary.LittleEndian.Uint16(b[:2]))
		if c&1 == 1 {
			v >>= 4
		}
		v &= 0xFFF
		return v, v >= 0xFF8, nil
	case FAT16:
		if _, err := fs.r.ReadAt(b[:2], fatStart+int64(c)*2); err != nil {
			return 0, false, fmt.Errorf("read FAT entry %d: %w", c, err)
		}
		v := uint32(binary.LittleEndian.Uint16(b[:2]))
		return v, v >= 0xFFF8, nil
	default:
		if _, err := fs.r.ReadAt(b[:], fatStart+int64(c)*4); err != nil {
			return 0, false, fmt.Errorf("read FAT entry %d: %w", c, err)
		}
		v := binary.LittleEndian.Uint32(b[:]) & 0x0FFFFFFF
		return v, v >= 0x0FFFFFF8, nil
	}
}

// chain returns the clusters of the chain starting at first, at most
// limit of them.
func (fs *FS) chain(first uint32, limit int64) ([]uint32, error) {
	var cs []uint32
	var loop loopCheck
	for c := first; ; {
		if !fs.validCluster(c) {
			return nil, &FieldError{Field: "FAT", Problem: fmt.Sprintf("chain from cluster %d reaches invalid cluster %d", first, c)}
		}
		if loop.loops(c) {
			return nil, &FieldError{Field: "FAT", Problem: fmt.Sprintf("chain from cluster %d loops back to cluster %d", first, c)}
		}
		if int64(len(cs)) >= limit {
			return nil, &FieldError{Field: "FAT", Problem: fmt.Sprintf("chain from cluster %d is longer than %d clusters", first, limit)}
		}
		cs = append(cs, c)
		n, end, err := fs.next(c)
		if err != nil {
			return nil, err
		}
		if end {
			return cs, nil
		}
		c = n
	}
}

// loopCheck finds a loop in a cluster chain with Brent's algorithm: in
// constant memory, within about twice the chain's length in steps. Without
// it a damaged FAT could make a chain as long as the cluster count of the
// volume its boot sector claims (up to 2^28).
type loopCheck struct {
	saved      uint32
	power, lam int64
}

// loops reports whether c, the next cluster of the chain, was seen before.
func (l *loopCheck) loops(c uint32) bool {
	if l.power == 0 {
		l.saved, l.power = c, 1
		return false
	}
	if c == l.saved {
		return true
	}
	if l.lam++; l.lam == l.power {
		l.saved, l.power, l.lam = c, l.power*2, 0
	}
	return false
}
