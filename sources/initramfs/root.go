package initramfs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/petrel-os/petrel/sources/dm"
)

// ErrRoot is wrapped by every refusal of the root the kernel command line
// asks for. /init mounts the root only from the read-only dm-verity device
// it creates itself from the one dm-mod.create= parameter.
var ErrRoot = errors.New("refused root")

// verityDevice returns the one device of dm-mod.create= after checking
// that the root can only be that device, verified: dm-mod.create= is given
// (ParseCmdline refuses it twice), it describes exactly one device, that
// device is read-only and every table line is a verity target, and root=
// (if given) can only name it. Whether a /dev/dm-<n> root= names it is
// known once it exists (rootNode).
func verityDevice(cl Cmdline) (dm.Device, error) {
	if cl.DMCreate == "" {
		return dm.Device{}, fmt.Errorf("%w: no dm-mod.create= on the kernel command line; the root must be the dm-verity device /init creates from it", ErrRoot)
	}
	devs, err := dm.ParseCreate(cl.DMCreate)
	if err != nil {
		return dm.Device{}, fmt.Errorf("parse dm-mod.create=: %w", err)
	}
	if len(devs) != 1 {
		names := make([]string, len(devs))
		for i, d := range devs {
			names[i] = d.Name
		}
		return dm.Device{}, fmt.Errorf("%w: dm-mod.create= describes %d devices (%s); exactly one, the verity root, is accepted", ErrRoot, len(devs), strings.Join(names, ", "))
	}
	d := devs[0]
	if !d.ReadOnly {
		return dm.Device{}, fmt.Errorf("%w: dm-mod.create= device %q is read-write; the verity root must be created read-only (flags ro)", ErrRoot, d.Name)
	}
	for i, t := range d.Targets {
		if t.Type != "verity" {
			return dm.Device{}, fmt.Errorf("%w: dm-mod.create= device %q table %d is a %q target; only verity targets are accepted for the root", ErrRoot, d.Name, i+1, t.Type)
		}
	}
	switch root := cl.Root; {
	case root == "", root == "/dev/mapper/"+d.Name:
	case strings.HasPrefix(root, "/dev/mapper/"):
		return dm.Device{}, fmt.Errorf("%w: root=%s names no device of dm-mod.create= (it creates %q)", ErrRoot, root, d.Name)
	case dmMinor(root) < 0:
		return dm.Device{}, fmt.Errorf("%w: root=%s is not the verity device; want /dev/mapper/%s or the /dev/dm-<minor> that dm-mod.create= creates", ErrRoot, root, d.Name)
	}
	return d, nil
}

// rootNode returns the device node to mount: the created device, which
// root= (if given) must name.
func rootNode(root, name string, minor uint32) (string, error) {
	path := fmt.Sprintf("/dev/dm-%d", minor)
	if n := dmMinor(root); n >= 0 && uint32(n) != minor {
		return "", fmt.Errorf("%w: root=%s is not the verity device %s (%s)", ErrRoot, root, name, path)
	}
	return path, nil
}

// dmMinor returns n for "/dev/dm-<n>", else -1.
func dmMinor(s string) int {
	v, ok := strings.CutPrefix(s, "/dev/dm-")
	if !ok || v == "" || len(v) > 1 && v[0] == '0' {
		return -1
	}
	n, err := strconv.ParseUint(v, 10, 20)
	if err != nil {
		return -1
	}
	return int(n)
}
