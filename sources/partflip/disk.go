package partflip

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/petrel-os/petrel/sources/bootdisk"
	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/gpt"
)

// Options say where the boot state is. Every field has a host default, so
// the zero value plus DefaultOptions works on a running Petrel host.
type Options struct {
	// Disk is the OS disk or disk image; empty means: find the disk that
	// holds an EFI system partition through SysBlockDir.
	Disk string
	// ESPOffset is the byte offset of the EFI system partition on Disk;
	// negative means: take it from the GPT.
	ESPOffset int64
	// EnvOffset is the absolute byte offset of the grubenv sector; negative
	// means: find EFI/BOOT/grubenv on the ESP.
	EnvOffset int64
	// Booted is the booted bank ("A" or "B"); empty means: find the BOOT
	// partition whose PARTUUID the kernel command line names.
	Booted string
	// CmdlinePath is read when Booted is empty.
	CmdlinePath string
	// SysBlockDir and DevDir are used to find the disk when Disk is empty.
	SysBlockDir string
	DevDir      string
}

// DefaultOptions returns the host defaults.
func DefaultOptions() Options {
	return Options{ESPOffset: -1, EnvOffset: -1, CmdlinePath: "/proc/cmdline", SysBlockDir: "/sys/class/block", DevDir: "/dev"}
}

// ErrBootedUnknown reports that the booted bank could not be determined.
var ErrBootedUnknown = errors.New("booted bank unknown")

// Location is where a disk's boot state is and which bank booted.
type Location struct {
	// Disk is the OS disk (device node or image file).
	Disk string
	// EnvOffset is the absolute byte offset of the grubenv sector.
	EnvOffset int64
	// Booted is the booted bank; valid only when BootedKnown.
	Booted      bootstate.Bank
	BootedKnown bool
	// BootedWhy says how the booted bank was found, or why not.
	BootedWhy string
}

// Locate finds the disk, the grubenv offset and the booted bank as o
// says (DefaultOptions on a running host). It reads the GPT and the ESP;
// it does not read the boot state.
func Locate(ctx context.Context, o Options) (*Location, error) {
	loc := &Location{Disk: o.Disk}
	var uuid gpt.GUID
	var haveUUID bool
	if o.Booted != "" {
		b, err := bootstate.ParseBank(o.Booted)
		if err != nil {
			return nil, fmt.Errorf("--booted: %w", err)
		}
		loc.Booted, loc.BootedKnown, loc.BootedWhy = b, true, "--booted flag"
	} else {
		data, err := os.ReadFile(o.CmdlinePath)
		if err != nil {
			return nil, fmt.Errorf("read kernel command line: %w", err)
		}
		if uuid, err = bootdisk.BootPartUUID(string(data)); err == nil {
			haveUUID = true
		} else {
			loc.BootedWhy = fmt.Sprintf("%s: %v", o.CmdlinePath, err)
		}
	}
	if loc.Disk == "" {
		d, err := discover(ctx, o.SysBlockDir, o.DevDir, uuid, haveUUID)
		if err != nil {
			return nil, err
		}
		loc.Disk = d
	}
	needGPT := (o.EnvOffset < 0 && o.ESPOffset < 0) || haveUUID
	var table *gpt.Table
	f, err := os.Open(loc.Disk)
	if err != nil {
		return nil, fmt.Errorf("open disk: %w", err)
	}
	defer f.Close()
	if needGPT {
		if table, err = gpt.ReadOpen(ctx, f); err != nil {
			return nil, fmt.Errorf("read GPT of %s: %w", loc.Disk, err)
		}
	}
	if haveUUID {
		if b, err := bootdisk.BankOf(table, uuid); err == nil {
			loc.Booted, loc.BootedKnown = b, true
			loc.BootedWhy = fmt.Sprintf("PARTUUID %s on the kernel command line is bank %s's BOOT partition", uuid, b)
		} else {
			loc.BootedWhy = fmt.Sprintf("PARTUUID %s on the kernel command line is no BOOT partition of %s", uuid, loc.Disk)
		}
	}
	loc.EnvOffset = o.EnvOffset
	if loc.EnvOffset < 0 {
		esp := o.ESPOffset
		if esp < 0 {
			p, ok := findType(table, disklayout.TypeEFISystem)
			if !ok {
				return nil, fmt.Errorf("find EFI system partition on %s: no partition of type %s", loc.Disk, disklayout.TypeEFISystem)
			}
			esp, _ = table.Bytes(p)
		}
		off, err := bootstate.LocateEnv(ctx, f, esp)
		if err != nil {
			return nil, fmt.Errorf("find grubenv on %s: %w", loc.Disk, err)
		}
		loc.EnvOffset = off
	}
	return loc, nil
}

func findType(t *gpt.Table, typ gpt.GUID) (gpt.Partition, bool) {
	for _, p := range t.Partitions {
		if p.Type == typ {
			return p, true
		}
	}
	return gpt.Partition{}, false
}

// discover finds the disk that holds an EFI system partition among the
// whole disks listed in sysBlock. With several, the one that also holds
// the booted PARTUUID wins.
func discover(ctx context.Context, sysBlock, devDir string, uuid gpt.GUID, haveUUID bool) (string, error) {
	disks, err := bootdisk.Scan(ctx, sysBlock, devDir)
	if err != nil {
		return "", fmt.Errorf("find OS disk: %w", err)
	}
	var candidates, booted []string
	var skipped []error
	for _, d := range disks {
		if d.Err != nil {
			skipped = append(skipped, d.Err)
			continue
		}
		if _, ok := findType(d.Table, disklayout.TypeEFISystem); !ok {
			continue
		}
		candidates = append(candidates, d.Path)
		if haveUUID && slices.ContainsFunc(d.Table.Partitions, func(p gpt.Partition) bool { return p.GUID == uuid }) {
			booted = append(booted, d.Path)
		}
	}
	switch {
	case len(booted) == 1:
		return booted[0], nil
	case len(candidates) == 1:
		return candidates[0], nil
	case len(candidates) == 0:
		return "", fmt.Errorf("find OS disk: no disk in %s has an EFI system partition: %w", sysBlock, errors.Join(skipped...))
	}
	return "", fmt.Errorf("find OS disk: several disks have an EFI system partition (%s); pass --disk", strings.Join(candidates, ", "))
}

// openForWrite opens the disk for the grubenv write: O_DIRECT on a block
// device, so exactly one sector goes to the disk.
func openForWrite(path string) (*os.File, error) {
	flags := os.O_RDWR
	if st, err := os.Stat(path); err == nil && st.Mode()&os.ModeDevice != 0 {
		flags |= oDirect
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, fmt.Errorf("open disk for writing: %w", err)
	}
	return f, nil
}

// openForRead opens the disk for reading the state.
func openForRead(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open disk: %w", err)
	}
	return f, nil
}
