package userdata

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"

	"github.com/petrel-os/petrel/sources/fat"
)

// ConfigDriveLabel is the filesystem label of a cloud-init NoCloud config
// drive.
const ConfigDriveLabel = "CIDATA"

// DefaultConfigDriveDevices returns the candidates tried, in order; globs
// are expanded.
func DefaultConfigDriveDevices() []string {
	return []string{
		"/dev/disk/by-label/CIDATA", "/dev/disk/by-label/cidata",
		"/dev/sr[0-9]*", "/dev/vd[a-z]", "/dev/xvd[a-z]", "/dev/sd[a-z]",
	}
}

// ConfigDriveProvider reads "user-data" from the root of the first device
// whose filesystem is labelled CIDATA (case-insensitive): FAT12/16/32 or
// ISO 9660 (plain, Rock Ridge or Joliet names). Nothing is mounted.
type ConfigDriveProvider struct {
	// Devices lists device or image paths (globs allowed); nil means
	// DefaultConfigDriveDevices.
	Devices []string
}

// Name implements Provider.
func (p ConfigDriveProvider) Name() string { return "config drive " + ConfigDriveLabel }

// ErrNotConfigDrive: a device is not a CIDATA FAT or ISO 9660 filesystem.
var ErrNotConfigDrive = errors.New("not a CIDATA config drive")

// UserData implements Provider.
func (p ConfigDriveProvider) UserData(ctx context.Context) ([]byte, error) {
	devs := p.Devices
	if devs == nil {
		devs = DefaultConfigDriveDevices()
	}
	seen := map[string]bool{}
	for _, pattern := range devs {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return nil, fmt.Errorf("expand device pattern %q: %w", pattern, err)
		}
		for _, m := range matches {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			real, err := filepath.EvalSymlinks(m)
			if err != nil || seen[real] {
				continue
			}
			seen[real] = true
			data, err := ReadConfigDrive(m)
			if errors.Is(err, ErrNotConfigDrive) {
				continue
			}
			return data, err
		}
	}
	return nil, nil
}

// ReadConfigDrive returns the root "user-data" file of the CIDATA
// filesystem at path, nil if it has none, or an error matching
// ErrNotConfigDrive if path does not hold one.
func ReadConfigDrive(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config drive candidate: %w: %w", ErrNotConfigDrive, err)
	}
	defer f.Close()
	if label, ok := fatLabel(f); ok {
		if !strings.EqualFold(label, ConfigDriveLabel) {
			return nil, fmt.Errorf("%s: FAT label %q: %w", path, label, ErrNotConfigDrive)
		}
		data, err := readFATFile(f, "user-data")
		if err != nil {
			return nil, fmt.Errorf("read user-data from FAT config drive %s: %w", path, err)
		}
		return data, nil
	}
	iso, err := openISO(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !strings.EqualFold(iso.label, ConfigDriveLabel) {
		return nil, fmt.Errorf("%s: ISO 9660 label %q: %w", path, iso.label, ErrNotConfigDrive)
	}
	data, err := iso.readRootFile("user-data")
	if err != nil {
		return nil, fmt.Errorf("read user-data from ISO 9660 config drive %s: %w", path, err)
	}
	return data, nil
}

// fatLabel returns the volume label from a FAT boot sector.
func fatLabel(r io.ReaderAt) (string, bool) {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err != nil || b[510] != 0x55 || b[511] != 0xAA {
		return "", false
	}
	if binary.LittleEndian.Uint16(b[22:]) == 0 && string(b[82:87]) == "FAT32" {
		return strings.TrimRight(string(b[71:82]), " \x00"), true
	}
	if string(b[54:57]) == "FAT" && b[38] == 0x29 {
		return strings.TrimRight(string(b[43:54]), " \x00"), true
	}
	return "", false
}

// readFATFile reads a root file with sources/fat, following its cluster
// chain (a file written after others were deleted may be fragmented); nil
// if absent.
func readFATFile(r io.ReaderAt, name string) ([]byte, error) {
	fs, err := fat.Open(r, 0)
	if err != nil {
		return nil, err
	}
	e, err := fs.Lookup(name)
	if errors.Is(err, fat.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", name, err)
	}
	if e.Size > MaxSize {
		return nil, fmt.Errorf("%s is %d bytes, more than %d", name, e.Size, MaxSize)
	}
	return fs.ReadFile(name)
}

const isoSector = 2048

type isoFS struct {
	r            io.ReaderAt
	label        string
	root, joliet isoRecord // joliet.size == 0 when absent
}

type isoRecord struct {
	extent, size uint32
	dir          bool
	name         string
}

// openISO reads the volume descriptors of an ISO 9660 filesystem.
func openISO(r io.ReaderAt) (*isoFS, error) {
	fs := &isoFS{r: r}
	found := false
	for i := int64(16); i < 16+32; i++ {
		d := make([]byte, isoSector)
		if _, err := r.ReadAt(d, i*isoSector); err != nil {
			break
		}
		if string(d[1:6]) != "CD001" {
			break
		}
		switch d[0] {
		case 1:
			fs.label = strings.TrimRight(string(d[40:72]), " ")
			fs.root = parseRecord(d[156:190], false)
			found = true
		case 2:
			if esc := string(d[88:91]); esc == "%/@" || esc == "%/C" || esc == "%/E" {
				fs.joliet = parseRecord(d[156:190], true)
			}
		case 255:
			i = 1 << 40
		}
	}
	if !found {
		return nil, fmt.Errorf("no FAT boot sector or ISO 9660 primary volume descriptor: %w", ErrNotConfigDrive)
	}
	return fs, nil
}

func parseRecord(b []byte, joliet bool) isoRecord {
	rec := isoRecord{
		extent: binary.LittleEndian.Uint32(b[2:]),
		size:   binary.LittleEndian.Uint32(b[10:]),
		dir:    b[25]&2 != 0,
	}
	n := int(b[32])
	if 33+n > len(b) {
		return rec
	}
	raw := b[33 : 33+n]
	if joliet {
		u := make([]uint16, n/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(raw[2*i:])
		}
		rec.name = string(utf16.Decode(u))
	} else {
		rec.name = string(raw)
	}
	// Rock Ridge NM entries in the system use area.
	su := 33 + n
	if n%2 == 0 {
		su++
	}
	var nm strings.Builder
	for su+4 <= len(b) {
		l := int(b[su+2])
		if l < 4 || su+l > len(b) {
			break
		}
		if string(b[su:su+2]) == "NM" && l >= 5 {
			nm.Write(b[su+5 : su+l])
		}
		su += l
	}
	if nm.Len() > 0 {
		rec.name = nm.String()
	}
	rec.name = strings.TrimSuffix(strings.SplitN(rec.name, ";", 2)[0], ".")
	return rec
}

// readRootFile finds name in the root directory: the Joliet tree if any,
// else the primary one (Rock Ridge names, or plain names where '-' became
// '_').
func (fs *isoFS) readRootFile(name string) ([]byte, error) {
	root, joliet := fs.root, false
	if fs.joliet.size > 0 {
		root, joliet = fs.joliet, true
	}
	if root.size > 1<<20 {
		return nil, fmt.Errorf("root directory of %d bytes is too large", root.size)
	}
	dir := make([]byte, root.size)
	if _, err := fs.r.ReadAt(dir, int64(root.extent)*isoSector); err != nil {
		return nil, fmt.Errorf("read root directory: %w", err)
	}
	plain := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	short := plain[:min(8, len(plain))] // ISO 9660 level 1: 8.3 names
	for off := 0; off < len(dir); {
		l := int(dir[off])
		if l == 0 { // records do not cross sectors: skip to the next one
			off = (off/isoSector + 1) * isoSector
			continue
		}
		if l < 34 || off+l > len(dir) {
			return nil, fmt.Errorf("directory record at %d has length %d", off, l)
		}
		rec := parseRecord(dir[off:off+l], joliet)
		off += l
		if rec.dir || !(rec.name == name || strings.EqualFold(rec.name, plain) || (!joliet && rec.name == short)) {
			continue
		}
		if rec.size > MaxSize {
			return nil, fmt.Errorf("%s is %d bytes, more than %d", name, rec.size, MaxSize)
		}
		data := make([]byte, rec.size)
		if _, err := fs.r.ReadAt(data, int64(rec.extent)*isoSector); err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		return data, nil
	}
	return nil, nil
}
