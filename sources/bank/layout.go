package bank

import (
	"errors"
	"fmt"
	"strings"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/gpt"
)

// Part is one of a bank's three images.
type Part int

// The parts, in the order an update writes them (upstream's order).
const (
	Root Part = iota
	Boot
	Hash
)

// Parts returns the parts in the order an update writes them.
func Parts() []Part { return []Part{Root, Boot, Hash} }

// String returns "root", "boot" or "hash".
func (p Part) String() string {
	switch p {
	case Root:
		return "root"
	case Boot:
		return "boot"
	case Hash:
		return "hash"
	}
	return fmt.Sprintf("Part(%d)", int(p))
}

// ErrLayout: the disk's partitions are not those of an A/B bank.
var ErrLayout = errors.New("not an A/B bank layout")

// Extent is a partition's place on the disk.
type Extent struct {
	Number int
	Label  string
	// Offset and Size are in bytes.
	Offset, Size int64
}

// Layout is where one bank's partitions are.
type Layout struct {
	Bank             bootstate.Bank
	Boot, Root, Hash Extent
}

// Extent returns the extent of part p.
func (l Layout) Extent(p Part) Extent {
	switch p {
	case Boot:
		return l.Boot
	case Hash:
		return l.Hash
	}
	return l.Root
}

// Find returns where bank b's partitions are in t: BOOT is the first (A)
// or second (B) partition of the BOOT type, ROOT and HASH the two entries
// after it, as the boot chain finds them. Wrong types, labels that do not
// end in the partition's key (disklayout.KeyRootB, ...) and a missing
// bank are ErrLayout.
func Find(t *gpt.Table, b bootstate.Bank) (Layout, error) {
	if !b.Valid() {
		return Layout{}, fmt.Errorf("find bank %d: %w", int(b), bootstate.ErrInvalidBank)
	}
	var boots []gpt.Partition
	byNumber := map[int]gpt.Partition{}
	for _, p := range t.Partitions {
		byNumber[p.Number] = p
		if p.Type == disklayout.TypeBoot {
			boots = append(boots, p)
		}
	}
	if len(boots) <= int(b) {
		return Layout{}, fmt.Errorf("find bank %s: %w: %d partitions of the BOOT type %s, want 2", b, ErrLayout, len(boots), disklayout.TypeBoot)
	}
	keys := map[bootstate.Bank][3]string{
		bootstate.BankA: {disklayout.KeyBootA, disklayout.KeyRootA, disklayout.KeyHashA},
		bootstate.BankB: {disklayout.KeyBootB, disklayout.KeyRootB, disklayout.KeyHashB},
	}[b]
	boot := boots[b]
	want := []struct {
		number int
		typ    gpt.GUID
		key    string
	}{
		{boot.Number, disklayout.TypeBoot, keys[0]},
		{boot.Number + 1, disklayout.TypeRoot, keys[1]},
		{boot.Number + 2, disklayout.TypeHash, keys[2]},
	}
	var ext [3]Extent
	var errs []error
	for i, w := range want {
		p, ok := byNumber[w.number]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("partition %d (%s): missing", w.number, w.key))
			continue
		case p.Type != w.typ:
			errs = append(errs, fmt.Errorf("partition %d (%s): type %s, want %s", w.number, w.key, p.Type, w.typ))
		case !strings.HasSuffix(p.Name, "-"+w.key):
			errs = append(errs, fmt.Errorf("partition %d: label %q, want one ending in -%s", w.number, p.Name, w.key))
		}
		off, size := t.Bytes(p)
		ext[i] = Extent{Number: p.Number, Label: p.Name, Offset: off, Size: size}
	}
	if err := errors.Join(errs...); err != nil {
		return Layout{}, fmt.Errorf("find bank %s: %w: %w", b, ErrLayout, err)
	}
	return Layout{Bank: b, Boot: ext[0], Root: ext[1], Hash: ext[2]}, nil
}
