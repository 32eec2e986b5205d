package vmdk

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadDescriptor marks a VMDK text descriptor that cannot be parsed.
var ErrBadDescriptor = errors.New("invalid VMDK descriptor")

// CIDNoParent is the parentCID of a disk without a parent.
const CIDNoParent = 0xffffffff

// Descriptor is the text descriptor of a VMDK disk.
type Descriptor struct {
	// CID is the content ID: it changes whenever the disk content changes.
	CID uint32
	// ParentCID is the CID of the parent disk, CIDNoParent if none.
	ParentCID uint32
	// CreateType is the disk type, e.g. "streamOptimized".
	CreateType string
	// Extents lists the extent lines in order.
	Extents []Extent
	// DDB holds the disk database entries ("ddb.*") in order.
	DDB []DDBEntry
}

// Extent is one extent line: `RW 4194304 SPARSE "disk.vmdk"`.
type Extent struct {
	Access  string // RW, RDONLY or NOACCESS
	Sectors uint64
	Type    string // SPARSE, FLAT, ZERO, VMFS, ...
	File    string
}

// DDBEntry is one disk database line: `ddb.adapterType = "lsilogic"`.
type DDBEntry struct {
	Key   string
	Value string
}

// Marshal renders d as descriptor text with "\n" line ends.
func (d Descriptor) Marshal() []byte {
	var b strings.Builder
	b.WriteString("# Disk DescriptorFile\n")
	b.WriteString("version=1\n")
	b.WriteString("encoding=\"UTF-8\"\n")
	fmt.Fprintf(&b, "CID=%08x\n", d.CID)
	fmt.Fprintf(&b, "parentCID=%08x\n", d.ParentCID)
	fmt.Fprintf(&b, "createType=\"%s\"\n", d.CreateType)
	b.WriteString("\n# Extent description\n")
	for _, e := range d.Extents {
		fmt.Fprintf(&b, "%s %d %s \"%s\"\n", e.Access, e.Sectors, e.Type, e.File)
	}
	b.WriteString("\n# The Disk Data Base\n#DDB\n\n")
	for _, e := range d.DDB {
		fmt.Fprintf(&b, "%s = \"%s\"\n", e.Key, e.Value)
	}
	return []byte(b.String())
}

// Get returns the value of the DDB entry key and whether it exists.
func (d Descriptor) Get(key string) (string, bool) {
	for _, e := range d.DDB {
		if e.Key == key {
			return e.Value, true
		}
	}
	return "", false
}

// ParseDescriptor parses descriptor text. Text after the first NUL byte (the
// padding of an embedded descriptor) is ignored. Every problem is reported
// with its line number.
func ParseDescriptor(text []byte) (Descriptor, error) {
	if i := strings.IndexByte(string(text), 0); i >= 0 {
		text = text[:i]
	}
	d := Descriptor{ParentCID: CIDNoParent}
	var errs []error
	seen := map[string]bool{}
	for n, line := range strings.Split(string(text), "\n") {
		lineNo := n + 1
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("line %d: %s", lineNo, fmt.Sprintf(format, args...)))
		}
		if f := strings.Fields(line); len(f) >= 4 && isAccess(f[0]) {
			e, err := parseExtent(line)
			if err != nil {
				bad("%v", err)
				continue
			}
			d.Extents = append(d.Extents, e)
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			bad("want key=value or an extent line, got %q", line)
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if strings.HasPrefix(key, "ddb.") {
			v, err := unquote(value)
			if err != nil {
				bad("%s: %v", key, err)
				continue
			}
			d.DDB = append(d.DDB, DDBEntry{Key: key, Value: v})
			continue
		}
		if seen[key] {
			bad("duplicate key %q", key)
			continue
		}
		seen[key] = true
		switch key {
		case "CID", "parentCID":
			v, err := strconv.ParseUint(value, 16, 32)
			if err != nil {
				bad("%s: want 8 hex digits, got %q", key, value)
				continue
			}
			if key == "CID" {
				d.CID = uint32(v)
			} else {
				d.ParentCID = uint32(v)
			}
		case "createType":
			v, err := unquote(value)
			if err != nil {
				bad("createType: %v", err)
				continue
			}
			d.CreateType = v
		case "version":
			if value != "1" && value != "2" && value != "3" {
				bad("version: want 1, 2 or 3, got %q", value)
			}
		}
	}
	if !seen["CID"] {
		errs = append(errs, errors.New("missing CID"))
	}
	if d.CreateType == "" {
		errs = append(errs, errors.New("missing createType"))
	}
	if len(errs) > 0 {
		return Descriptor{}, fmt.Errorf("%w: %w", ErrBadDescriptor, errors.Join(errs...))
	}
	return d, nil
}

func isAccess(s string) bool {
	return s == "RW" || s == "RDONLY" || s == "NOACCESS"
}

func parseExtent(line string) (Extent, error) {
	q := strings.IndexByte(line, '"')
	if q < 0 {
		return Extent{}, fmt.Errorf("extent: want a quoted file name in %q", line)
	}
	f := strings.Fields(line[:q])
	if len(f) != 3 {
		return Extent{}, fmt.Errorf("extent: want ACCESS SECTORS TYPE \"FILE\", got %q", line)
	}
	n, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return Extent{}, fmt.Errorf("extent size: want a sector count, got %q", f[1])
	}
	// An optional offset may follow the quoted name.
	end := strings.IndexByte(line[q+1:], '"')
	if end < 0 {
		return Extent{}, fmt.Errorf("extent file: unterminated quote in %q", line)
	}
	return Extent{Access: f[0], Sectors: n, Type: f[2], File: line[q+1 : q+1+end]}, nil
}

func unquote(v string) (string, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", fmt.Errorf("want a quoted value, got %q", v)
	}
	v = v[1 : len(v)-1]
	if strings.ContainsRune(v, '"') {
		return "", fmt.Errorf("quote inside value %q", v)
	}
	return v, nil
}
