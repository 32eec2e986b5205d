package esp

import (
	"encoding/binary"
	"fmt"
	"io"
	"unicode/utf16"

	"github.com/petrel-os/petrel/sources/fat"
)

// image is one filesystem being written.
type image struct {
	g      *geometry
	w      io.WriterAt
	offset int64
	stamp  dosStamp
	opts   Options
	next   uint32   // next free cluster
	fat    []uint32 // FAT entries, indexed by cluster
}

func (img *image) alloc(n uint32) (uint32, error) {
	if n == 0 {
		return 0, nil
	}
	first := img.next
	if uint64(first)+uint64(n) > uint64(img.g.clusters)+2 {
		return 0, fmt.Errorf("files need more than the %d clusters of %d bytes: %w", img.g.clusters, img.g.clusterBytes(), ErrTooSmall)
	}
	for c := first; c < first+n-1; c++ {
		img.fat[c] = c + 1
	}
	img.fat[first+n-1] = 0x0FFFFFFF
	img.next += n
	return first, nil
}

func (img *image) clusterOffset(c uint32) int64 {
	return img.offset + (img.g.firstData+int64(c-2)*int64(img.g.spc))*SectorSize
}

func (img *image) writeAt(b []byte, off int64, what string) error {
	if _, err := img.w.WriteAt(b, off); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	return nil
}

func (img *image) write(root *node, files []File) (*Result, error) {
	g := img.g
	img.fat = make([]uint32, g.clusters+2)
	img.next = 2
	cb := g.clusterBytes()
	clustersFor := func(bytes int64) uint32 { return uint32((bytes + cb - 1) / cb) }

	// Directories first (root first on FAT32), then files, each in
	// sorted tree order; allocation is sequential so every chain is
	// contiguous.
	var dirs, leaves []*node
	var walk func(n *node)
	walk = func(n *node) {
		for _, c := range n.children {
			if c.dir {
				dirs = append(dirs, c)
			} else {
				leaves = append(leaves, c)
			}
		}
		for _, c := range n.children {
			if c.dir {
				walk(c)
			}
		}
	}
	walk(root)
	if g.typ == fat.FAT32 {
		dirs = append([]*node{root}, dirs...)
	} else if slots := img.dirSlots(root); slots > g.rootEntries {
		return nil, fmt.Errorf("root directory needs %d entries, FAT16 has %d", slots, g.rootEntries)
	}
	var err error
	for _, d := range dirs {
		d.clusters = clustersFor(int64(img.dirSlots(d)) * 32)
		if d.cluster, err = img.alloc(d.clusters); err != nil {
			return nil, err
		}
	}
	res := &Result{Type: g.typ.String(), ClusterBytes: int(cb), Files: make([]Placed, len(files))}
	for _, l := range leaves {
		n := int64(len(files[l.file].Data))
		if n > 0xFFFFFFFF {
			return nil, fmt.Errorf("file %q: %d bytes, FAT holds at most 4 GiB - 1", files[l.file].Path, n)
		}
		l.size = uint32(n)
		l.clusters = clustersFor(n)
		if l.cluster, err = img.alloc(l.clusters); err != nil {
			return nil, err
		}
	}

	// Boot region, FATs, root directory, directories, file data.
	if err := img.writeReserved(); err != nil {
		return nil, err
	}
	if err := img.writeFATs(); err != nil {
		return nil, err
	}
	if g.typ == fat.FAT16 {
		buf := make([]byte, g.rootSectors*SectorSize)
		img.encodeDir(buf, root, nil)
		if err := img.writeAt(buf, img.offset+int64(g.reserved+g.numFATs*int(g.fatSectors))*SectorSize, "root directory"); err != nil {
			return nil, err
		}
	}
	parents := map[*node]*node{}
	for _, d := range append([]*node{root}, dirs...) {
		for _, c := range d.children {
			parents[c] = d
		}
	}
	for _, d := range dirs {
		buf := make([]byte, int64(d.clusters)*cb)
		img.encodeDir(buf, d, parents[d])
		if err := img.writeAt(buf, img.clusterOffset(d.cluster), "directory "+d.name); err != nil {
			return nil, err
		}
	}
	for _, l := range leaves {
		data := files[l.file].Data
		res.Files[l.file] = Placed{Path: files[l.file].Path, Size: int64(len(data))}
		if l.clusters == 0 {
			continue
		}
		padded := make([]byte, int64(l.clusters)*cb)
		copy(padded, data)
		off := img.clusterOffset(l.cluster)
		if err := img.writeAt(padded, off, "file "+files[l.file].Path); err != nil {
			return nil, err
		}
		res.Files[l.file].Offset = off
	}
	return res, nil
}

// dirSlots counts the 32-byte entries of directory d.
func (img *image) dirSlots(d *node) int {
	n := 0
	if d.name == "" && img.opts.Label != "" {
		n++ // volume label in the root
	}
	if d.name != "" {
		n += 2 // "." and ".."
	}
	for _, c := range d.children {
		n += c.entrySlots()
	}
	return n
}

// encodeDir fills buf with the entries of d; parent is nil for the root.
func (img *image) encodeDir(buf []byte, d, parent *node) {
	off := 0
	put := func(e []byte) { copy(buf[off:], e); off += 32 }
	if d.name == "" && img.opts.Label != "" {
		put(img.entry(paddedName(img.opts.Label), fat.AttrVolumeID, 0, 0))
	}
	if d.name != "" {
		put(img.entry(paddedName("."), fat.AttrDirectory, d.cluster, 0))
		up := uint32(0)
		if parent != nil && parent.name != "" {
			up = parent.cluster
		}
		put(img.entry(paddedName(".."), fat.AttrDirectory, up, 0))
	}
	for _, c := range d.children {
		if c.long {
			for _, e := range longEntries(c.name, fat.ShortNameChecksum(c.short)) {
				put(e)
			}
		}
		if c.dir {
			put(img.entry(c.short, fat.AttrDirectory, c.cluster, 0))
		} else {
			put(img.entry(c.short, fat.AttrArchive, c.cluster, c.size))
		}
	}
}

func paddedName(s string) [11]byte {
	var n [11]byte
	copy(n[:], "           ")
	copy(n[:], s)
	return n
}

// entry encodes a short directory entry with the image's timestamp.
func (img *image) entry(name [11]byte, attr byte, cluster, size uint32) []byte {
	e := make([]byte, 32)
	copy(e, name[:])
	e[11] = attr
	st := img.stamp
	if attr&fat.AttrVolumeID == 0 {
		binary.LittleEndian.PutUint16(e[14:], st.time) // creation
		binary.LittleEndian.PutUint16(e[16:], st.date)
		binary.LittleEndian.PutUint16(e[18:], st.date) // last access
	}
	binary.LittleEndian.PutUint16(e[20:], uint16(cluster>>16))
	binary.LittleEndian.PutUint16(e[22:], st.time) // last write
	binary.LittleEndian.PutUint16(e[24:], st.date)
	binary.LittleEndian.PutUint16(e[26:], uint16(cluster))
	binary.LittleEndian.PutUint32(e[28:], size)
	return e
}

// longEntries returns the VFAT long-name entries of name, in on-disk
// order (last part first).
func longEntries(name string, sum byte) [][]byte {
	u := utf16.Encode([]rune(name))
	n := (len(u) + 12) / 13
	padded := make([]uint16, n*13)
	for i := range padded {
		switch {
		case i < len(u):
			padded[i] = u[i]
		case i == len(u):
			padded[i] = 0
		default:
			padded[i] = 0xFFFF
		}
	}
	var out [][]byte
	for seq := n; seq >= 1; seq-- {
		e := make([]byte, 32)
		e[0] = byte(seq)
		if seq == n {
			e[0] |= 0x40
		}
		e[11] = fat.AttrLongName
		e[13] = sum
		for i, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
			binary.LittleEndian.PutUint16(e[o:], padded[(seq-1)*13+i])
		}
		out = append(out, e)
	}
	return out
}

// bootSector encodes the boot sector and BPB.
func (img *image) bootSector() []byte {
	g := img.g
	b := make([]byte, SectorSize)
	copy(b[0:], []byte{0xEB, 0x3C, 0x90})
	copy(b[3:], "MSWIN4.1")
	binary.LittleEndian.PutUint16(b[11:], SectorSize)
	b[13] = byte(g.spc)
	binary.LittleEndian.PutUint16(b[14:], uint16(g.reserved))
	b[16] = byte(g.numFATs)
	binary.LittleEndian.PutUint16(b[17:], uint16(g.rootEntries))
	if g.total < 0x10000 {
		binary.LittleEndian.PutUint16(b[19:], uint16(g.total))
	} else {
		binary.LittleEndian.PutUint32(b[32:], uint32(g.total))
	}
	b[21] = 0xF8
	binary.LittleEndian.PutUint16(b[24:], 63)                            // sectors per track
	binary.LittleEndian.PutUint16(b[26:], 255)                           // heads
	binary.LittleEndian.PutUint32(b[28:], uint32(img.offset/SectorSize)) // hidden sectors
	label := "NO NAME"
	if img.opts.Label != "" {
		label = img.opts.Label
	}
	ext := b[36:] // FAT12/16 extended BPB
	fsType := "FAT16   "
	if g.typ == fat.FAT32 {
		b[1] = 0x58
		binary.LittleEndian.PutUint32(b[36:], uint32(g.fatSectors))
		binary.LittleEndian.PutUint32(b[44:], 2) // root cluster
		binary.LittleEndian.PutUint16(b[48:], 1) // FSInfo sector
		binary.LittleEndian.PutUint16(b[50:], 6) // backup boot sector
		ext = b[64:]
		fsType = "FAT32   "
	} else {
		binary.LittleEndian.PutUint16(b[22:], uint16(g.fatSectors))
	}
	ext[0] = 0x80 // drive number
	ext[2] = 0x29 // extended boot signature
	binary.LittleEndian.PutUint32(ext[3:], img.opts.VolumeID)
	n := paddedName(label)
	copy(ext[7:], n[:])
	copy(ext[18:], fsType)
	b[510], b[511] = 0x55, 0xAA
	return b
}

// writeReserved writes the reserved region: boot sector and, on FAT32,
// FSInfo and their backups at sectors 6 and 7.
func (img *image) writeReserved() error {
	g := img.g
	buf := make([]byte, g.reserved*SectorSize)
	boot := img.bootSector()
	copy(buf, boot)
	if g.typ == fat.FAT32 {
		info := make([]byte, SectorSize)
		binary.LittleEndian.PutUint32(info[0:], 0x41615252)
		binary.LittleEndian.PutUint32(info[484:], 0x61417272)
		binary.LittleEndian.PutUint32(info[488:], g.clusters+2-img.next) // free clusters
		binary.LittleEndian.PutUint32(info[492:], img.next)              // next free
		binary.LittleEndian.PutUint32(info[508:], 0xAA550000)
		copy(buf[1*SectorSize:], info)
		copy(buf[6*SectorSize:], boot)
		copy(buf[7*SectorSize:], info)
	}
	return img.writeAt(buf, img.offset, "reserved sectors")
}

// writeFATs encodes the allocation table and writes every copy.
func (img *image) writeFATs() error {
	g := img.g
	buf := make([]byte, g.fatSectors*SectorSize)
	for c, v := range img.fat {
		switch g.typ {
		case fat.FAT32:
			switch c {
			case 0:
				v = 0x0FFFFFF8
			case 1:
				v = 0x0FFFFFFF
			}
			binary.LittleEndian.PutUint32(buf[4*c:], v)
		default:
			switch c {
			case 0:
				v = 0xFFF8
			case 1:
				v = 0xFFFF
			}
			binary.LittleEndian.PutUint16(buf[2*c:], uint16(v))
		}
	}
	for i := 0; i < g.numFATs; i++ {
		off := img.offset + (int64(g.reserved)+int64(i)*g.fatSectors)*SectorSize
		if err := img.writeAt(buf, off, fmt.Sprintf("FAT %d", i+1)); err != nil {
			return err
		}
	}
	return nil
}
