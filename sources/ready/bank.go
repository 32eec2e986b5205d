package ready

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/petrel-os/petrel/sources/bootdisk"
	"github.com/petrel-os/petrel/sources/bootstate"
)

// FindBank reads the kernel command line at cmdlinePath and the GPT of
// every whole disk listed in sysBlockDir (devices under devDir) and
// returns the booted bank. Its errors wrap bootdisk.ErrNoBootUUID or
// bootdisk.ErrBankUnknown when the bank cannot be told.
func FindBank(ctx context.Context, cmdlinePath, sysBlockDir, devDir string) (bootstate.Bank, error) {
	data, err := os.ReadFile(cmdlinePath)
	if err != nil {
		return 0, fmt.Errorf("read kernel command line: %w", err)
	}
	uuid, err := bootdisk.BootPartUUID(string(data))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", cmdlinePath, err)
	}
	disks, err := bootdisk.Scan(ctx, sysBlockDir, devDir)
	if err != nil {
		return 0, err
	}
	var skipped []error
	for _, d := range disks {
		if d.Err != nil {
			skipped = append(skipped, d.Err)
			continue
		}
		if b, err := bootdisk.BankOf(d.Table, uuid); err == nil {
			return b, nil
		}
	}
	return 0, errors.Join(fmt.Errorf("%w: no disk in %s has a BOOT partition with PARTUUID %s", bootdisk.ErrBankUnknown, sysBlockDir, uuid), errors.Join(skipped...))
}
