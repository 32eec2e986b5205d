package bootdisk

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/gpt"
)

// ErrNoBootUUID reports a kernel command line without the dm-verity
// table's PARTUUID=<uuid>/PARTNROFF=n device.
var ErrNoBootUUID = errors.New("no PARTUUID=<uuid>/PARTNROFF=<n> on the kernel command line")

// ErrBankUnknown reports that no BOOT partition of bank A or B has the
// booted PARTUUID.
var ErrBankUnknown = errors.New("booted bank unknown")

var bootUUIDRE = regexp.MustCompile(`PARTUUID=([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})/PARTNROFF=[0-9]+`)

// BootPartUUID returns the PARTUUID of the booted BOOT partition: the
// first PARTUUID=<uuid>/PARTNROFF=<n> device of the dm-verity table that
// the bank's grub.cfg puts on the kernel command line. A plain
// root=PARTUUID=<uuid> does not count.
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
