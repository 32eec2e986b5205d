package disklayout

import (
	"errors"
	"fmt"
	"strings"

	"github.com/petrel-os/petrel/sources/gpt"
)

// Partition keys: stable names of the plan's partitions, independent of the
// label prefix.
const (
	KeyBIOS      = "BIOS"
	KeyEFIA      = "EFI-A"
	KeyBootA     = "BOOT-A"
	KeyRootA     = "ROOT-A"
	KeyHashA     = "HASH-A"
	KeyReservedA = "RESERVED-A"
	KeyEFIB      = "EFI-B"
	KeyBootB     = "BOOT-B"
	KeyRootB     = "ROOT-B"
	KeyHashB     = "HASH-B"
	KeyReservedB = "RESERVED-B"
	KeyPrivate   = "PRIVATE"
	KeyDataA     = "DATA-A"
	KeyDataB     = "DATA-B"
)

// Size constants of the upstream formula (MiB, or MiB per GiB of OS image).
// Changing any of them breaks in-place updates of existing disks.
const (
	gptMiB      = 1 // at each end of a disk
	biosMiB     = 4
	overheadMiB = 2*gptMiB + biosMiB
	efiMiB      = 5
	dataAMiB    = 1 // DATA-A placeholder in the split plan

	bootPerGiB     = 20
	rootPerGiB     = 460
	hashPerGiB     = 5
	reservedPerGiB = 15
	privatePerGiB  = 24

	// MiB is one mebibyte; GiB one gibibyte.
	MiB = 1 << 20
	GiB = 1 << 30
)

// validOSSizes are the OS image sizes the plan supports.
var validOSSizes = []int{2, 4}

// ValidOSImageSizesGiB returns the OS image sizes Plan accepts.
func ValidOSImageSizesGiB() []int { return append([]int(nil), validOSSizes...) }

// maxPrefixLen keeps the longest label ("<prefix>-RESERVED-A") within the 36
// UTF-16 units of a GPT name.
const maxPrefixLen = gpt.NameMaxUnits - len("-RESERVED-A")

// Options selects a plan.
type Options struct {
	OSImageSizeGiB   int    // 2 or 4
	DataImageSizeGiB int    // at least 1; the data disk (split) or the DATA-A part of the single disk (unified)
	Unified          bool   // one disk of OS+data GiB instead of an OS disk plus a data disk
	InPlaceUpdates   bool   // two banks A and B; without it one bank A of double size
	LabelPrefix      string // e.g. "PETREL": labels become "PETREL-BOOT-A"
}

// Validate reports every problem of o at once.
func (o Options) Validate() error {
	var errs []error
	ok := false
	for _, s := range validOSSizes {
		ok = ok || o.OSImageSizeGiB == s
	}
	if !ok {
		errs = append(errs, fmt.Errorf("OSImageSizeGiB: %d is not supported, valid values are %v", o.OSImageSizeGiB, validOSSizes))
	}
	if o.DataImageSizeGiB < 1 {
		errs = append(errs, fmt.Errorf("DataImageSizeGiB: %d, want at least 1", o.DataImageSizeGiB))
	}
	switch {
	case o.LabelPrefix == "":
		errs = append(errs, errors.New("LabelPrefix: empty, want e.g. \"PETREL\""))
	case len(o.LabelPrefix) > maxPrefixLen:
		errs = append(errs, fmt.Errorf("LabelPrefix: %q is %d characters, at most %d fit a GPT name", o.LabelPrefix, len(o.LabelPrefix), maxPrefixLen))
	case strings.IndexFunc(o.LabelPrefix, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		errs = append(errs, fmt.Errorf("LabelPrefix: %q must be printable ASCII without spaces", o.LabelPrefix))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid partition plan options: %w", err)
	}
	return nil
}

// Partition is one planned GPT entry.
type Partition struct {
	Number     int    // GPT entry number after sorting by offset (1-based)
	Key        string // stable name, e.g. "BOOT-A"
	Label      string // GPT partition name, e.g. "PETREL-BOOT-A"; empty for DATA
	Type       GUID
	GUID       GUID // zero: assigned from the caller's seed (Disk.GPT)
	OffsetMiB  int64
	SizeMiB    int64
	Attributes uint64
}

// OffsetBytes returns the partition's start in bytes.
func (p Partition) OffsetBytes() int64 { return p.OffsetMiB * MiB }

// SizeBytes returns the partition's length in bytes.
func (p Partition) SizeBytes() int64 { return p.SizeMiB * MiB }

// Disk is one planned disk image.
type Disk struct {
	Name       string // "os" or "data"
	SizeBytes  int64
	Partitions []Partition // in Number order
}

// Layout is the whole plan.
type Layout struct {
	Options  Options
	OSDisk   Disk
	DataDisk *Disk // split plan only
}

// Partition returns the partition with the given key (e.g. KeyBootA), or false.
func (d *Disk) Partition(key string) (Partition, bool) {
	for _, p := range d.Partitions {
		if p.Key == key {
			return p, true
		}
	}
	return Partition{}, false
}

// Partition looks key up on the OS disk, then on the data disk.
func (l *Layout) Partition(key string) (Partition, bool) {
	if p, ok := l.OSDisk.Partition(key); ok {
		return p, true
	}
	if l.DataDisk != nil {
		return l.DataDisk.Partition(key)
	}
	return Partition{}, false
}

// Label returns the GPT name of the partition with the given key under
// prefix: fixed names for BIOS and EFI, an empty name for DATA, and
// "<prefix>-<key>" for the rest.
func Label(prefix, key string) string {
	switch key {
	case KeyBIOS:
		return "BIOS-BOOT"
	case KeyEFIA:
		return "EFI-SYSTEM"
	case KeyEFIB:
		return "EFI-BACKUP"
	case KeyDataA, KeyDataB:
		return ""
	}
	return prefix + "-" + key
}

// Plan computes the partition plan for opts.
func Plan(opts Options) (*Layout, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	g := int64(opts.OSImageSizeGiB)
	type bankPart struct {
		key  string
		typ  GUID
		size int64
	}
	bank := []bankPart{
		{"EFI", TypeEFISystem, efiMiB},
		{"BOOT", TypeBoot, bootPerGiB * g},
		{"ROOT", TypeRoot, rootPerGiB * g},
		{"HASH", TypeHash, hashPerGiB * g},
		{"RESERVED", TypeReserved, reservedPerGiB*g - efiMiB},
	}
	var parts []Partition
	off := int64(gptMiB)
	add := func(key string, typ GUID, size int64) {
		parts = append(parts, Partition{Key: key, Label: Label(opts.LabelPrefix, key), Type: typ, OffsetMiB: off, SizeMiB: size})
		off += size
	}
	add(KeyBIOS, TypeBIOSBoot, biosMiB)
	banks, scale := []string{"A", "B"}, int64(1)
	if !opts.InPlaceUpdates {
		banks, scale = []string{"A"}, 2
	}
	for _, b := range banks {
		for _, bp := range bank {
			typ := bp.typ
			if bp.key == "EFI" && b == "B" {
				typ = TypeEFIBackup
			}
			add(bp.key+"-"+b, typ, bp.size*scale)
		}
	}
	add(KeyPrivate, TypePrivate, privatePerGiB*g-overheadMiB-dataAMiB)

	osBytes := g * GiB
	l := &Layout{Options: opts}
	if opts.Unified {
		add(KeyDataA, TypeData, int64(opts.DataImageSizeGiB)*1024)
		parts[len(parts)-1].GUID = DataPreferredGUID
		osBytes += int64(opts.DataImageSizeGiB) * GiB
	} else {
		add(KeyDataA, TypeData, dataAMiB)
		parts[len(parts)-1].GUID = DataFallbackGUID
		l.DataDisk = &Disk{
			Name:      "data",
			SizeBytes: int64(opts.DataImageSizeGiB) * GiB,
			Partitions: []Partition{{
				Number: 1, Key: KeyDataB, Label: Label(opts.LabelPrefix, KeyDataB), Type: TypeData, GUID: DataPreferredGUID,
				OffsetMiB: gptMiB, SizeMiB: int64(opts.DataImageSizeGiB)*1024 - 2*gptMiB,
			}},
		}
	}
	// Parts are generated in offset order, so numbering them in sequence is
	// upstream's "sgdisk --sort".
	for i := range parts {
		parts[i].Number = i + 1
		if parts[i].Key == KeyBootA {
			parts[i].Attributes, _ = EncodePrio(0, Prio{Priority: 1, Successful: true})
		}
	}
	// The split plan fills the OS disk exactly; the unified plan leaves the
	// 1 MiB that the split plan gives its DATA-A placeholder unused before
	// the backup GPT, as upstream does.
	if end := (off + gptMiB) * MiB; end > osBytes {
		return nil, fmt.Errorf("plan partitions: internal error: OS disk plan ends at %d bytes, disk has %d", end, osBytes)
	}
	l.OSDisk = Disk{Name: "os", SizeBytes: osBytes, Partitions: parts}
	return l, nil
}

// GPT returns the partition table of d. Partitions whose GUID is zero and
// the disk itself get GUIDs derived from seed (gpt.DeriveGUID with
// "<disk name>/<key>"), so the same seed always gives the same table.
func (d *Disk) GPT(seed []byte) *gpt.Table {
	t := &gpt.Table{DiskGUID: gpt.DeriveGUID(seed, d.Name+"/disk")}
	for _, p := range d.Partitions {
		guid := p.GUID
		if guid.IsZero() {
			guid = gpt.DeriveGUID(seed, d.Name+"/"+p.Key)
		}
		first := uint64(p.OffsetBytes() / gpt.SectorSize)
		t.Partitions = append(t.Partitions, gpt.Partition{
			Number:     p.Number,
			Type:       p.Type,
			GUID:       guid,
			FirstLBA:   first,
			LastLBA:    first + uint64(p.SizeBytes()/gpt.SectorSize) - 1,
			Attributes: p.Attributes,
			Name:       p.Label,
		})
	}
	return t
}
