package esp

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// SectorSize is the logical sector size of the filesystems written here.
const SectorSize = 512

// File is one file to store.
type File struct {
	Path string // slash-separated, relative to the root: "EFI/BOOT/grubenv"
	Data []byte
}

// Options tunes the filesystem. The zero value is valid.
type Options struct {
	// Label is the volume label (at most 11 characters of A–Z, 0–9 and
	// "-_"); empty means none ("NO NAME").
	Label string
	// VolumeID is the serial number; zero derives it from the files.
	VolumeID uint32
	// Epoch (SOURCE_DATE_EPOCH) is the time of every entry; times before
	// 1980 are stored as 1980-01-01 00:00:00.
	Epoch int64
	// FAT32 forces FAT32 (needs at least 65525 clusters of 512 bytes,
	// about 33 MiB); otherwise FAT16 is used below 512 MiB and FAT32
	// above.
	FAT32 bool
}

// Placed tells where a file's bytes lie.
type Placed struct {
	Path   string
	Offset int64 // absolute offset in the writer (partition offset included)
	Size   int64
}

// Result describes the written filesystem.
type Result struct {
	Type         string // "FAT16" or "FAT32"
	ClusterBytes int
	Files        []Placed // in the order of the files given
}

// File returns the placement of path, or false.
func (r *Result) File(path string) (Placed, bool) {
	for _, p := range r.Files {
		if strings.EqualFold(p.Path, path) {
			return p, true
		}
	}
	return Placed{}, false
}

// Write formats the region [offset, offset+size) of w as FAT with the
// default Options and stores files in it.
func Write(ctx context.Context, w io.WriterAt, offset, size int64, files []File) (*Result, error) {
	return WriteWithOptions(ctx, w, offset, size, files, Options{})
}

// WriteWithOptions is Write with explicit options. It writes the
// reserved sectors, both FATs, the root directory and every used cluster;
// free clusters are not touched (they are zero in a fresh sparse image).
func WriteWithOptions(ctx context.Context, w io.WriterAt, offset, size int64, files []File, opts Options) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("write EFI system partition: %w", err)
	}
	if offset%SectorSize != 0 || size%SectorSize != 0 || offset < 0 {
		return nil, fmt.Errorf("write EFI system partition: offset %d and size %d must be multiples of %d", offset, size, SectorSize)
	}
	if err := validateLabel(opts.Label); err != nil {
		return nil, fmt.Errorf("write EFI system partition: %w", err)
	}
	g, err := chooseGeometry(size/SectorSize, opts.FAT32)
	if err != nil {
		return nil, fmt.Errorf("write EFI system partition: %w", err)
	}
	root, err := buildTree(files)
	if err != nil {
		return nil, fmt.Errorf("write EFI system partition: %w", err)
	}
	if opts.VolumeID == 0 {
		opts.VolumeID = deriveVolumeID(files)
	}
	img := &image{g: g, w: w, offset: offset, stamp: dosTime(opts.Epoch), opts: opts}
	res, err := img.write(root, files)
	if err != nil {
		return nil, fmt.Errorf("write EFI system partition: %w", err)
	}
	return res, nil
}

func validateLabel(l string) error {
	if len(l) > 11 {
		return fmt.Errorf("label %q is longer than 11 characters", l)
	}
	for _, c := range l {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ' ') {
			return fmt.Errorf("label %q: character %q, want A-Z, 0-9, '-', '_' or space", l, c)
		}
	}
	return nil
}

func deriveVolumeID(files []File) uint32 {
	h := sha256.New()
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, f := range sorted {
		fmt.Fprintf(h, "%s\x00%d\x00", f.Path, len(f.Data))
		h.Write(f.Data)
	}
	return binary.LittleEndian.Uint32(h.Sum(nil))
}

// dosStamp is a FAT date and time.
type dosStamp struct{ date, time uint16 }

func dosTime(epoch int64) dosStamp {
	t := time.Unix(epoch, 0).UTC()
	if t.Year() < 1980 {
		return dosStamp{date: 1<<5 | 1} // 1980-01-01
	}
	if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	return dosStamp{
		date: uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day()),
		time: uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2),
	}
}

// ErrTooSmall is returned when the region cannot hold a FAT16 filesystem
// or the files do not fit.
var ErrTooSmall = errors.New("EFI system partition too small")
