package bootstate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// EnvPath is where the environment block lives on the EFI system partition.
const EnvPath = "/EFI/BOOT/grubenv"

// ErrNotFound reports that a path does not exist on the FAT file system.
var ErrNotFound = errors.New("file not found")

// fatVolume is the geometry of a FAT12/16/32 file system read from its
// boot sector. Offsets are bytes from the start of the device.
type fatVolume struct {
	dev          io.ReaderAt
	base         int64 // start of the file system
	bytesPerSec  int64
	secPerClus   int64
	fatStart     int64 // first sector of the first FAT
	rootStart    int64 // FAT12/16: first sector of the root directory
	rootEntries  int64 // FAT12/16: entries in the root directory
	dataStart    int64 // first sector of cluster 2
	clusters     uint32
	bits         int    // 12, 16 or 32
	rootCluster  uint32 // FAT32 only
	maxDirChunks int
}

// LocateEnv returns the absolute byte offset of the environment block
// EnvPath inside the FAT file system that starts at espOffset on dev. The
// file must be exactly BlockSize bytes; its first cluster then holds it in
// one sector. Only 8.3 names are matched, which EFI/BOOT/grubenv all are.
func LocateEnv(ctx context.Context, dev io.ReaderAt, espOffset int64) (int64, error) {
	off, size, err := LocateFile(ctx, dev, espOffset, EnvPath)
	if err != nil {
		return 0, err
	}
	if size != BlockSize {
		return 0, fmt.Errorf("locate %s: file is %d bytes, want %d (one sector)", EnvPath, size, BlockSize)
	}
	if off%BlockSize != 0 {
		return 0, fmt.Errorf("locate %s: offset %d is not sector aligned", EnvPath, off)
	}
	return off, nil
}

// LocateFile finds path (absolute, '/'-separated) in the FAT file system at
// espOffset and returns the byte offset of its first cluster and its size.
func LocateFile(ctx context.Context, dev io.ReaderAt, espOffset int64, path string) (offset, size int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	v, err := openFAT(dev, espOffset)
	if err != nil {
		return 0, 0, fmt.Errorf("read FAT boot sector at offset %d: %w", espOffset, err)
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var dir uint32 // 0 = root directory
	for i, name := range parts {
		e, err := v.lookup(dir, name)
		if err != nil {
			return 0, 0, fmt.Errorf("locate %s on FAT at offset %d: %s: %w", path, espOffset, strings.Join(parts[:i+1], "/"), err)
		}
		isDir := e.attr&0x10 != 0
		if last := i == len(parts)-1; last {
			if isDir {
				return 0, 0, fmt.Errorf("locate %s on FAT at offset %d: is a directory", path, espOffset)
			}
			if e.cluster < 2 || e.cluster >= v.clusters+2 {
				return 0, 0, fmt.Errorf("locate %s on FAT at offset %d: first cluster %d out of range", path, espOffset, e.cluster)
			}
			return v.clusterOffset(e.cluster), int64(e.size), nil
		}
		if !isDir {
			return 0, 0, fmt.Errorf("locate %s on FAT at offset %d: %s is not a directory", path, espOffset, name)
		}
		dir = e.cluster
	}
	return 0, 0, fmt.Errorf("locate %q: empty path", path)
}

func openFAT(dev io.ReaderAt, base int64) (*fatVolume, error) {
	bs := make([]byte, 512)
	if _, err := dev.ReadAt(bs, base); err != nil {
		return nil, err
	}
	le16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(bs[o:])) }
	le32 := func(o int) int64 { return int64(binary.LittleEndian.Uint32(bs[o:])) }
	if bs[510] != 0x55 || bs[511] != 0xaa {
		return nil, errors.New("no 0x55AA boot signature")
	}
	v := &fatVolume{dev: dev, base: base, bytesPerSec: le16(11), secPerClus: int64(bs[13])}
	switch v.bytesPerSec {
	case 512, 1024, 2048, 4096:
	default:
		return nil, fmt.Errorf("bytes per sector %d, want 512..4096", v.bytesPerSec)
	}
	if v.secPerClus == 0 || v.secPerClus&(v.secPerClus-1) != 0 {
		return nil, fmt.Errorf("sectors per cluster %d, want a power of two", v.secPerClus)
	}
	reserved, nfats, rootEnt := le16(14), int64(bs[16]), le16(17)
	total, fatSize := le16(19), le16(22)
	if total == 0 {
		total = le32(32)
	}
	if fatSize == 0 {
		fatSize = le32(36)
	}
	if reserved == 0 || nfats == 0 || fatSize == 0 {
		return nil, fmt.Errorf("reserved sectors %d, FATs %d, FAT size %d: not a FAT file system", reserved, nfats, fatSize)
	}
	rootSecs := (rootEnt*32 + v.bytesPerSec - 1) / v.bytesPerSec
	v.fatStart = reserved
	v.rootStart = reserved + nfats*fatSize
	v.rootEntries = rootEnt
	v.dataStart = v.rootStart + rootSecs
	if total <= v.dataStart {
		return nil, fmt.Errorf("%d sectors in total, data would start at %d", total, v.dataStart)
	}
	clusters := (total - v.dataStart) / v.secPerClus
	if clusters > 0x0ffffff5 {
		return nil, fmt.Errorf("%d clusters is too many", clusters)
	}
	v.clusters = uint32(clusters)
	switch {
	case clusters < 4085:
		v.bits = 12
	case clusters < 65525:
		v.bits = 16
	default:
		v.bits = 32
		v.rootCluster = uint32(le32(44))
	}
	if v.bits != 32 && rootEnt == 0 {
		return nil, errors.New("FAT12/16 without root directory entries")
	}
	// A directory never has more clusters than the volume.
	v.maxDirChunks = int(clusters) + 1
	return v, nil
}

func (v *fatVolume) clusterOffset(c uint32) int64 {
	return v.base + (v.dataStart+int64(c-2)*v.secPerClus)*v.bytesPerSec
}

// next returns the FAT entry of cluster c and whether it ends the chain.
func (v *fatVolume) next(c uint32) (uint32, bool, error) {
	var off int64
	switch v.bits {
	case 12:
		off = int64(c) + int64(c)/2
	case 16:
		off = int64(c) * 2
	default:
		off = int64(c) * 4
	}
	buf := make([]byte, 4)
	need := 2
	if v.bits == 32 {
		need = 4
	}
	n, err := v.dev.ReadAt(buf, v.base+v.fatStart*v.bytesPerSec+off)
	if n < need && err != nil {
		return 0, false, fmt.Errorf("read FAT entry %d: %w", c, err)
	}
	var e, eoc uint32
	switch v.bits {
	case 12:
		e = uint32(binary.LittleEndian.Uint16(buf))
		if c%2 == 1 {
			e >>= 4
		}
		e &= 0xfff
		eoc = 0xff8
	case 16:
		e, eoc = uint32(binary.LittleEndian.Uint16(buf)), 0xfff8
	default:
		e, eoc = binary.LittleEndian.Uint32(buf)&0x0fffffff, 0x0ffffff8
	}
	if e >= eoc {
		return 0, true, nil
	}
	if e < 2 || e >= v.clusters+2 {
		return 0, false, fmt.Errorf("FAT entry of cluster %d points to %d, outside the volume", c, e)
	}
	return e, false, nil
}

type dirEntry struct {
	attr    byte
	cluster uint32
	size    uint32
}

// lookup finds name in the directory that starts at cluster dir (0 = root).
func (v *fatVolume) lookup(dir uint32, name string) (dirEntry, error) {
	want, ok := shortName(name)
	if !ok {
		return dirEntry{}, fmt.Errorf("%q is not an 8.3 name", name)
	}
	// chunks yields the directory's regions (offset, length).
	type chunk struct{ off, n int64 }
	var chunks []chunk
	switch {
	case dir == 0 && v.bits != 32:
		chunks = []chunk{{v.base + v.rootStart*v.bytesPerSec, v.rootEntries * 32}}
	default:
		c := dir
		if c == 0 {
			c = v.rootCluster
		}
		for i := 0; ; i++ {
			if c < 2 || c >= v.clusters+2 {
				return dirEntry{}, fmt.Errorf("directory cluster %d outside the volume", c)
			}
			if i > v.maxDirChunks {
				return dirEntry{}, errors.New("directory cluster chain loops")
			}
			chunks = append(chunks, chunk{v.clusterOffset(c), v.secPerClus * v.bytesPerSec})
			n, end, err := v.next(c)
			if err != nil {
				return dirEntry{}, err
			}
			if end {
				break
			}
			c = n
		}
	}
	buf := make([]byte, 4096)
	for _, ch := range chunks {
		for done := int64(0); done < ch.n; done += int64(len(buf)) {
			piece := buf[:min(int64(len(buf)), ch.n-done)]
			if _, err := v.dev.ReadAt(piece, ch.off+done); err != nil {
				return dirEntry{}, fmt.Errorf("read directory at offset %d: %w", ch.off+done, err)
			}
			for p := 0; p+32 <= len(piece); p += 32 {
				e := piece[p : p+32]
				switch {
				case e[0] == 0:
					return dirEntry{}, ErrNotFound
				case e[0] == 0xe5, e[11] == 0x0f, e[11]&0x08 != 0:
					continue // deleted, long-name part, volume label
				}
				if strings.EqualFold(string(e[:11]), want) {
					cl := uint32(binary.LittleEndian.Uint16(e[26:]))
					if v.bits == 32 {
						cl |= uint32(binary.LittleEndian.Uint16(e[20:])) << 16
					}
					return dirEntry{attr: e[11], cluster: cl, size: binary.LittleEndian.Uint32(e[28:])}, nil
				}
			}
		}
	}
	return dirEntry{}, ErrNotFound
}

// shortName returns the 11-byte directory form of an 8.3 name.
func shortName(name string) (string, bool) {
	base, ext, _ := strings.Cut(name, ".")
	if base == "" || len(base) > 8 || len(ext) > 3 || strings.ContainsAny(name, " /\\*?\"<>|+,;=[]") || strings.Count(name, ".") > 1 {
		return "", false
	}
	return strings.ToUpper(base + strings.Repeat(" ", 8-len(base)) + ext + strings.Repeat(" ", 3-len(ext))), true
}
