package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// Sentinel errors of FindFile.
var (
	ErrNotFound   = errors.New("file not found")
	ErrFragmented = errors.New("file is not stored contiguously")
	ErrIsDir      = errors.New("is a directory")
)

// Directory entry attributes.
const (
	AttrReadOnly  = 0x01
	AttrHidden    = 0x02
	AttrSystem    = 0x04
	AttrVolumeID  = 0x08
	AttrDirectory = 0x10
	AttrArchive   = 0x20
	AttrLongName  = 0x0F
)

// maxDirEntries bounds how many entries one directory may have (the
// specification's limit is 65536).
const maxDirEntries = 65536

// Entry is a directory entry.
type Entry struct {
	Name    string // long name if present, else the short name "BASE.EXT"
	Short   string
	Attr    byte
	Cluster uint32
	Size    uint32
}

// IsDir reports whether e is a directory.
func (e Entry) IsDir() bool { return e.Attr&AttrDirectory != 0 }

// FindFile opens the FAT filesystem at partOffset in r and returns the
// absolute offset and the size of the file at path ("EFI/BOOT/grubenv",
// matched case-insensitively like the firmware and GRUB do). The file
// must be stored in consecutive clusters (else ErrFragmented), so that
// its bytes can be rewritten in place. An empty file gives offset 0.
func FindFile(r io.ReaderAt, partOffset int64, path string) (offset, size int64, err error) {
	fs, err := Open(r, partOffset)
	if err != nil {
		return 0, 0, err
	}
	e, err := fs.Lookup(path)
	if err != nil {
		return 0, 0, fmt.Errorf("find %q: %w", path, err)
	}
	if e.IsDir() {
		return 0, 0, fmt.Errorf("find %q: %w", path, ErrIsDir)
	}
	if e.Size == 0 {
		return 0, 0, nil
	}
	need := (int64(e.Size) + fs.ClusterBytes() - 1) / fs.ClusterBytes()
	cs, err := fs.chain(e.Cluster, int64(fs.Clusters))
	if err != nil {
		return 0, 0, fmt.Errorf("find %q: %w", path, err)
	}
	if int64(len(cs)) < need {
		return 0, 0, fmt.Errorf("find %q: %w", path, &FieldError{Field: "FAT", Problem: fmt.Sprintf("chain has %d clusters, size %d needs %d", len(cs), e.Size, need)})
	}
	for i := int64(1); i < need; i++ {
		if cs[i] != cs[i-1]+1 {
			return 0, 0, fmt.Errorf("find %q: cluster %d follows %d: %w", path, cs[i], cs[i-1], ErrFragmented)
		}
	}
	return fs.clusterOffset(e.Cluster), int64(e.Size), nil
}

// Lookup finds the entry at a slash-separated path from the root.
func (fs *FS) Lookup(path string) (Entry, error) {
	dir := Entry{Attr: AttrDirectory} // cluster 0: the root
	if fs.Type == FAT32 {
		dir.Cluster = fs.RootCluster
	}
	parts := strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '\\' })
	if len(parts) == 0 {
		return dir, nil
	}
	for i, name := range parts {
		if !dir.IsDir() {
			return Entry{}, fmt.Errorf("%s: %w", strings.Join(parts[:i], "/"), ErrNotFound)
		}
		entries, err := fs.ReadDir(dir.Cluster)
		if err != nil {
			return Entry{}, err
		}
		found := false
		for _, e := range entries {
			if strings.EqualFold(e.Name, name) || strings.EqualFold(e.Short, name) {
				dir, found = e, true
				break
			}
		}
		if !found {
			return Entry{}, ErrNotFound
		}
	}
	return dir, nil
}

// ReadDir returns the entries of the directory starting at cluster, or of
// the root directory when cluster is 0 (FAT12/16 fixed root, or FAT32's
// root cluster), without volume labels and "." and "..".
func (fs *FS) ReadDir(cluster uint32) ([]Entry, error) {
	var data []byte
	if cluster == 0 && fs.Type == FAT32 {
		cluster = fs.RootCluster
	}
	if cluster == 0 {
		data = make([]byte, fs.RootEntries*32)
		if _, err := fs.r.ReadAt(data, fs.offset+fs.rootDirSector*int64(fs.BytesPerSector)); err != nil {
			return nil, fmt.Errorf("read root directory: %w", err)
		}
	} else {
		cs, err := fs.chain(cluster, maxDirEntries*32/fs.ClusterBytes()+1)
		if err != nil {
			return nil, fmt.Errorf("read directory at cluster %d: %w", cluster, err)
		}
		data = make([]byte, int64(len(cs))*fs.ClusterBytes())
		for i, c := range cs {
			chunk := data[int64(i)*fs.ClusterBytes() : int64(i+1)*fs.ClusterBytes()]
			if _, err := fs.r.ReadAt(chunk, fs.clusterOffset(c)); err != nil {
				return nil, fmt.Errorf("read directory cluster %d: %w", c, err)
			}
		}
	}
	return parseDir(data, fs.Type == FAT32), nil
}

// parseDir decodes raw directory entries, joining long-name runs whose
// checksum matches their short entry. The high word of the first cluster
// counts only on FAT32; FAT12/16 reserve it.
func parseDir(data []byte, fat32 bool) []Entry {
	var entries []Entry
	var lfn []uint16
	var lfnSum byte
	lfnValid := false
	for off := 0; off+32 <= len(data); off += 32 {
		d := data[off : off+32]
		if d[0] == 0x00 {
			break
		}
		if d[0] == 0xE5 {
			lfnValid = false
			continue
		}
		if d[11]&0x3F == AttrLongName {
			seq := d[0] & 0x1F
			if d[0]&0x40 != 0 {
				lfn, lfnSum, lfnValid = make([]uint16, int(seq)*13), d[13], seq > 0
			}
			if !lfnValid || seq == 0 || int(seq)*13 > len(lfn) || d[13] != lfnSum {
				lfnValid = false
				continue
			}
			part := lfn[(int(seq)-1)*13:]
			for i, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				part[i] = binary.LittleEndian.Uint16(d[o:])
			}
			continue
		}
		var short [11]byte
		copy(short[:], d[:11])
		e := Entry{
			Short:   shortString(short, d[12]),
			Attr:    d[11],
			Cluster: uint32(binary.LittleEndian.Uint16(d[26:])),
			Size:    binary.LittleEndian.Uint32(d[28:]),
		}
		if fat32 {
			e.Cluster |= uint32(binary.LittleEndian.Uint16(d[20:])) << 16
		}
		e.Name = e.Short
		if lfnValid && ShortNameChecksum(short) == lfnSum {
			u := lfn
			for i, c := range u {
				if c == 0 {
					u = u[:i]
					break
				}
			}
			e.Name = string(utf16.Decode(u))
		}
		lfnValid = false
		if e.Attr&AttrVolumeID != 0 || e.Short == "." || e.Short == ".." {
			continue
		}
		entries = append(entries, e)
	}
	return entries
}

// shortString formats an 11-byte short name as "BASE.EXT", lower-casing
// parts flagged in the NT case byte (0x08 base, 0x10 extension).
func shortString(n [11]byte, ntCase byte) string {
	if n[0] == 0x05 {
		n[0] = 0xE5
	}
	base := strings.TrimRight(string(n[:8]), " ")
	ext := strings.TrimRight(string(n[8:]), " ")
	if ntCase&0x08 != 0 {
		base = strings.ToLower(base)
	}
	if ntCase&0x10 != 0 {
		ext = strings.ToLower(ext)
	}
	if ext == "" {
		return base
	}
	return base + "." + ext
}

// ShortNameChecksum is the checksum of an 11-byte short name that its
// long-name entries carry.
func ShortNameChecksum(n [11]byte) byte {
	var sum byte
	for _, c := range n {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	return sum
}
