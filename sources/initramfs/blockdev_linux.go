package initramfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/sources/bootdisk"
	"github.com/petrel-os/petrel/sources/gpt"
)

// ErrUnsupportedSpec is wrapped for device specs /init cannot resolve.
var ErrUnsupportedSpec = errors.New("unsupported device spec")

// ErrAmbiguous is wrapped when a PARTUUID= or PARTLABEL= spec matches more
// than one partition where exactly one is required.
var ErrAmbiguous = errors.New("ambiguous device spec")

// errNotYet is wrapped while a device may still appear.
var errNotYet = errors.New("device not present yet")

// node is a resolved block device.
type node struct {
	Path  string // path below the dev root, e.g. /dev/vda3
	Major uint32
	Minor uint32
	// Disk is the kernel name of the whole disk that holds the partition
	// ("vda"), or of the device itself when it is a whole disk; "" when
	// not known.
	Disk string
	// Part is the partition's GPT entry when it was found through a GPT.
	Part *gpt.Partition
}

// Dev is the major:minor form the kernel accepts in device-mapper tables.
func (n node) Dev() string { return fmt.Sprintf("%d:%d", n.Major, n.Minor) }

// blockDevs resolves device specs against a sysfs tree and a /dev tree.
// Production uses /sys and /dev; tests use a fake sysfs in a temporary
// directory and disk image files in place of device nodes.
//
// PARTUUID= and PARTLABEL= specs must name exactly one partition. When
// bootDisk is set (the disk that holds the verity root's partitions), a
// spec is looked up there first and only if it matches nothing there on
// the other disks; two matches in the scope searched are an error
// (ErrAmbiguous) naming both devices.
type blockDevs struct {
	sys      string // sysfs mount point
	dev      string // devtmpfs mount point
	bootDisk string // kernel name of the boot disk, "" before it is known
}

var majorMinorRE = regexp.MustCompile(`^[0-9]+:[0-9]+$`)

// isDeviceSpec reports whether a device-mapper table argument names a
// block device that /init should resolve and wait for.
func isDeviceSpec(s string) bool {
	return strings.HasPrefix(s, "/dev/") || strings.HasPrefix(s, "PARTUUID=") || strings.HasPrefix(s, "PARTLABEL=") || majorMinorRE.MatchString(s)
}

// withBootDisk returns b with the boot disk set.
func (b blockDevs) withBootDisk(disk string) blockDevs {
	b.bootDisk = disk
	return b
}

// wait resolves spec, retrying every interval until it resolves, a
// permanent error occurs, or timeout passes.
func (b blockDevs) wait(ctx context.Context, spec string, timeout time.Duration) (node, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := b.resolve(ctx, spec)
		if err == nil || !errors.Is(err, errNotYet) {
			return n, err
		}
		select {
		case <-ctx.Done():
			return node{}, fmt.Errorf("wait %s for device %q: %w", timeout, spec, err)
		case <-tick.C:
		}
	}
}

// resolve maps one spec to a device: PARTUUID=<guid>[/PARTNROFF=<n>],
// /dev/<path> or <major>:<minor>.
func (b blockDevs) resolve(ctx context.Context, spec string) (node, error) {
	switch {
	case strings.HasPrefix(spec, "PARTUUID="):
		return b.resolvePartUUID(ctx, spec)
	case strings.HasPrefix(spec, "PARTLABEL="):
		return b.resolvePartLabel(ctx, spec)
	case strings.HasPrefix(spec, "/dev/"):
		p := filepath.Join(b.dev, strings.TrimPrefix(spec, "/dev/"))
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return node{}, fmt.Errorf("stat %q: %w", spec, errNotYet)
			}
			return node{}, fmt.Errorf("stat %q: %w", spec, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFBLK {
			return node{}, fmt.Errorf("resolve %q: not a block device", spec)
		}
		n := node{Path: spec, Major: unix.Major(st.Rdev), Minor: unix.Minor(st.Rdev)}
		n.Disk = b.diskOf(n.Dev())
		return n, nil
	case majorMinorRE.MatchString(spec):
		name, err := b.nameOf(spec)
		if err != nil {
			return node{}, err
		}
		ma, mi, err := parseMajMin(spec)
		if err != nil {
			return node{}, err
		}
		return node{Path: "/dev/" + name, Major: ma, Minor: mi, Disk: b.diskOf(spec)}, nil
	default:
		return node{}, fmt.Errorf("%w: %q (expected PARTUUID=<guid>[/PARTNROFF=<n>], PARTLABEL=<name>, /dev/<name> or <major>:<minor>)", ErrUnsupportedSpec, spec)
	}
}

// nameOf finds the kernel name of the block device major:minor.
func (b blockDevs) nameOf(majMin string) (string, error) {
	ue, err := os.ReadFile(filepath.Join(b.sys, "dev/block", majMin, "uevent"))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("look up block device %s: %w", majMin, errNotYet)
	}
	if err != nil {
		return "", fmt.Errorf("look up block device %s: %w", majMin, err)
	}
	for _, l := range strings.Split(string(ue), "\n") {
		if v, ok := strings.CutPrefix(l, "DEVNAME="); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("look up block device %s: no DEVNAME in uevent", majMin)
}

// sysBlock is one entry of /sys/class/block.
type sysBlock struct {
	name      string
	dev       string // major:minor
	partition int    // 0 for whole disks
	parent    string // disk name, for partitions
}

// diskOf returns the kernel name of the whole disk that holds the device
// majMin (the device itself for a whole disk), or "" if sysfs does not
// list it.
func (b blockDevs) diskOf(majMin string) string {
	devs, err := b.list()
	if err != nil {
		return ""
	}
	for _, d := range devs {
		if d.dev == majMin {
			if d.partition != 0 {
				return d.parent
			}
			return d.name
		}
	}
	return ""
}

func (b blockDevs) list() ([]sysBlock, error) {
	dir := filepath.Join(b.sys, "class/block")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list block devices in %q: %w", dir, err)
	}
	var out []sysBlock
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		dev, err := os.ReadFile(filepath.Join(p, "dev"))
		if err != nil {
			continue // vanished or not ready
		}
		sb := sysBlock{name: e.Name(), dev: strings.TrimSpace(string(dev))}
		if pn, err := os.ReadFile(filepath.Join(p, "partition")); err == nil {
			sb.partition, _ = strconv.Atoi(strings.TrimSpace(string(pn)))
			real, err := filepath.EvalSymlinks(p)
			if err != nil {
				continue
			}
			sb.parent = filepath.Base(filepath.Dir(real))
		}
		out = append(out, sb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// resolvePartUUID handles PARTUUID=<guid>[/PARTNROFF=<n>]: the partition
// whose GPT unique GUID is guid, or the partition n slots after it on the
// same disk. The GPT is read from each whole disk, because sysfs does not
// publish partition GUIDs.
func (b blockDevs) resolvePartUUID(ctx context.Context, spec string) (node, error) {
	rest := strings.TrimPrefix(spec, "PARTUUID=")
	guid, off, hasOff := strings.Cut(rest, "/")
	offset := 0
	if hasOff {
		v, ok := strings.CutPrefix(off, "PARTNROFF=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			return node{}, fmt.Errorf("%w: %q: expected /PARTNROFF=<non-negative number> after the GUID", ErrUnsupportedSpec, spec)
		}
		offset = n
	}
	g, err := gpt.ParseGUID(strings.ToLower(guid))
	if err != nil {
		return node{}, fmt.Errorf("%w: %q: expected a 36-character GPT partition GUID", ErrUnsupportedSpec, spec)
	}
	return b.findPartition(ctx, spec, func(p gpt.Partition) bool { return p.GUID == g }, offset)
}

// resolvePartLabel handles PARTLABEL=<name>: the partition whose GPT name
// is name (exact, case sensitive).
func (b blockDevs) resolvePartLabel(ctx context.Context, spec string) (node, error) {
	name := strings.TrimPrefix(spec, "PARTLABEL=")
	if name == "" {
		return node{}, fmt.Errorf("%w: %q: expected a partition name after PARTLABEL=", ErrUnsupportedSpec, spec)
	}
	return b.findPartition(ctx, spec, func(p gpt.Partition) bool { return p.Name == name }, 0)
}

// match is a partition that a spec matched.
type match struct {
	disk string
	part gpt.Partition
}

// findPartition reads the GPT of every whole disk and returns the
// partition offset slots after the one entry that match accepts: on the
// boot disk if it has one, else on exactly one of the other disks (see
// blockDevs).
func (b blockDevs) findPartition(ctx context.Context, spec string, accept func(gpt.Partition) bool, offset int) (node, error) {
	devs, err := b.list()
	if err != nil {
		return node{}, err
	}
	var problems []error
	var onBoot, elsewhere []match
	for _, d := range devs {
		if d.partition != 0 || bootdisk.Virtual(d.name) {
			continue
		}
		t, err := b.readDiskGPT(ctx, d.name)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		for _, p := range t.Partitions {
			if !accept(p) {
				continue
			}
			if d.name == b.bootDisk {
				onBoot = append(onBoot, match{d.name, p})
			} else {
				elsewhere = append(elsewhere, match{d.name, p})
			}
		}
	}
	found, scope := onBoot, "on the boot disk "+b.bootDisk
	switch {
	case b.bootDisk == "":
		found, scope = elsewhere, "on the disks"
	case len(onBoot) == 0:
		found, scope = elsewhere, "on the disks other than the boot disk "+b.bootDisk
	}
	switch len(found) {
	case 0:
		return node{}, fmt.Errorf("resolve %q: no disk has a GPT partition that matches: %w", spec, errors.Join(append(problems, errNotYet)...))
	case 1:
	default:
		names := make([]string, len(found))
		for i, m := range found {
			names[i] = fmt.Sprintf("/dev/%s partition %d", m.disk, m.part.Number)
			for _, c := range devs {
				if c.parent == m.disk && c.partition == m.part.Number {
					names[i] = "/dev/" + c.name
				}
			}
		}
		return node{}, fmt.Errorf("%w: %q matches %s %s; it must name exactly one partition", ErrAmbiguous, spec, scope, strings.Join(names, " and "))
	}
	m := found[0]
	want := m.part.Number + offset
	for _, c := range devs {
		if c.parent == m.disk && c.partition == want {
			ma, mi, err := parseMajMin(c.dev)
			if err != nil {
				return node{}, fmt.Errorf("resolve %q: %s: %w", spec, c.name, err)
			}
			n := node{Path: "/dev/" + c.name, Major: ma, Minor: mi, Disk: m.disk}
			if offset == 0 {
				n.Part = &m.part
			}
			return n, nil
		}
	}
	return node{}, fmt.Errorf("resolve %q: partition %d of %s: %w", spec, want, m.disk, errNotYet)
}

// readDiskGPT reads the partition table of a whole disk with its logical
// block size. A disk with one usable copy of the table (a table write cut
// short) is read from that copy: the boot that follows repairs it
// (growDisk).
func (b blockDevs) readDiskGPT(ctx context.Context, disk string) (*gpt.Table, error) {
	p := filepath.Join(b.dev, disk)
	t, err := gpt.ReadFile(ctx, p)
	var one *gpt.OneCopyError
	if errors.As(err, &one) {
		return one.Table, nil
	}
	return t, err
}

// rewriteTable replaces every device spec in a target's parameters with
// major:minor, waiting for each device to appear. It also returns the
// disks that hold the devices, in the order of the parameters.
func (b blockDevs) rewriteTable(ctx context.Context, params string, timeout time.Duration) (string, []string, error) {
	f := strings.Fields(params)
	var disks []string
	for i, w := range f {
		if !isDeviceSpec(w) {
			continue
		}
		n, err := b.wait(ctx, w, timeout)
		if err != nil {
			return "", nil, err
		}
		f[i] = n.Dev()
		if n.Disk != "" {
			disks = append(disks, n.Disk)
		}
	}
	return strings.Join(f, " "), disks, nil
}

// parseMajMin parses "major:minor".
func parseMajMin(s string) (uint32, uint32, error) {
	maj, mnr, ok := strings.Cut(s, ":")
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(mnr, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("device number %q: expected <major>:<minor>", s)
	}
	return uint32(ma), uint32(mi), nil
}
