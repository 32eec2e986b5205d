package disklayout

import (
	"errors"
	"fmt"

	"github.com/petrel-os/petrel/sources/gpt"
)

// Verify checks that table (read from a disk) matches the plan d: every
// planned partition at its number with the same type, label, start and
// size, and no extra partitions. Partition GUIDs and attributes are not
// compared (they are per-disk and change at run time). Every mismatch is
// reported.
func (d *Disk) Verify(table *gpt.Table) error {
	var errs []error
	for _, p := range d.Partitions {
		got, ok := table.Partition(p.Number)
		if !ok {
			errs = append(errs, fmt.Errorf("partition %d (%s): missing", p.Number, p.Key))
			continue
		}
		first := uint64(p.OffsetBytes() / gpt.SectorSize)
		last := first + uint64(p.SizeBytes()/gpt.SectorSize) - 1
		if got.Type != p.Type {
			errs = append(errs, fmt.Errorf("partition %d (%s): type %s, want %s", p.Number, p.Key, got.Type, p.Type))
		}
		if got.Name != p.Label {
			errs = append(errs, fmt.Errorf("partition %d (%s): label %q, want %q", p.Number, p.Key, got.Name, p.Label))
		}
		if got.FirstLBA != first || got.LastLBA != last {
			errs = append(errs, fmt.Errorf("partition %d (%s): sectors %d..%d, want %d..%d", p.Number, p.Key, got.FirstLBA, got.LastLBA, first, last))
		}
	}
	for _, got := range table.Partitions {
		if got.Number > len(d.Partitions) {
			errs = append(errs, fmt.Errorf("partition %d (%q): not in the plan", got.Number, got.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("verify %s disk against the partition plan: %w", d.Name, err)
	}
	return nil
}
