package ready

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/gpt"
)

// ErrNoBootUUID reports a kernel command line without the dm-verity
// table's PARTUUID=<uuid>/PARTNROFF=n device.
var ErrNoBootUUID = errors.New("no PARTUUID=<uuid>/PARTNROFF=<n> on the kernel command line")

// ErrBankUnknown reports that no disk has a BOOT partition with the booted
// PARTUUID.
var ErrBankUnknown = errors.New("booted bank unknown")

var bootUUIDRE = regexp.MustCompile(`PARTUUID=([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})/PARTNROFF=[0-9]+`)

// BootPartUUID returns the PARTUUID of the booted BOOT partition: the
// first PARTUUID=<uuid>/PARTNROFF=<n> device of the dm-verity table that
// the bank's grub.cfg puts on the kernel command line.
func BootPartUUID(cmdline string) (gpt.GUID, error) {
	m := bootUUIDRE.FindStringSubmatch(cmdline)
	if m == nil {
		return gpt.GUID{}, ErrNoBootUUID
	}
	g, err := gpt.ParseGUID(strings.ToLower(m[1]))
	if err != nil {
		return gpt.GUID{}, fmt.Errorf("parse PARTUUID %q: %w", m[1], err)
	}
	return g, nil
}

// BankOf returns the bank whose BOOT partition has the unique GUID uuid:
// the first partition of the BOOT type is bank A, the second bank B.
func BankOf(t *gpt.Table, uuid gpt.GUID) (bootstate.Bank, error) {
	n := 0
	for _, p := range t.Partitions {
		if p.Type != disklayout.TypeBoot {
			continue
		}
		if p.GUID == uuid {
			if n > 1 {
				return 0, fmt.Errorf("%w: PARTUUID %s is BOOT partition number %d, only two banks exist", ErrBankUnknown, uuid, n+1)
			}
			return bootstate.Bank(n), nil
		}
		n++
	}
	return 0, fmt.Errorf("%w: no BOOT partition has PARTUUID %s", ErrBankUnknown, uuid)
}

// FindBank reads the kernel command line at cmdlinePath and the GPT of
// every whole disk listed in sysBlockDir (devices under devDir) and
// returns the booted bank.
func FindBank(ctx context.Context, cmdlinePath, sysBlockDir, devDir string) (bootstate.Bank, error) {
	data, err := os.ReadFile(cmdlinePath)
	if err != nil {
		return 0, fmt.Errorf("read kernel command line: %w", err)
	}
	uuid, err := BootPartUUID(string(data))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", cmdlinePath, err)
	}
	entries, err := os.ReadDir(sysBlockDir)
	if err != nil {
		return 0, fmt.Errorf("list block devices in %s: %w", sysBlockDir, err)
	}
	var skipped []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		name := e.Name()
		if virtualDevice(name) {
			continue
		}
		if _, err := os.Stat(filepath.Join(sysBlockDir, name, "partition")); err == nil {
			continue // a partition, not a whole disk
		}
		t, err := readDiskGPT(ctx, filepath.Join(devDir, name), filepath.Join(sysBlockDir, name, "size"))
		if err != nil {
			skipped = append(skipped, fmt.Errorf("%s: %w", name, err))
			continue
		}
		b, err := BankOf(t, uuid)
		if err == nil {
			return b, nil
		}
	}
	return 0, errors.Join(fmt.Errorf("%w: no disk in %s has a BOOT partition with PARTUUID %s", ErrBankUnknown, sysBlockDir, uuid), errors.Join(skipped...))
}

// virtualDevice reports block devices that never hold the OS disk.
func virtualDevice(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "md", "sr", "nbd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// readDiskGPT reads the GPT of a disk whose size in 512-byte sectors is in
// sizeFile (sysfs).
func readDiskGPT(ctx context.Context, path, sizeFile string) (*gpt.Table, error) {
	data, err := os.ReadFile(sizeFile)
	if err != nil {
		return nil, fmt.Errorf("read size: %w", err)
	}
	sectors, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("parse size %q: %w", strings.TrimSpace(string(data)), err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open disk: %w", err)
	}
	defer f.Close()
	t, err := gpt.Read(ctx, f, sectors*gpt.SectorSize)
	if err != nil {
		return nil, fmt.Errorf("read GPT of %s: %w", path, err)
	}
	return t, nil
}
