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
)

// ErrUnsupportedSpec is wrapped for device specs /init cannot resolve.
var ErrUnsupportedSpec = errors.New("unsupported device spec")

// errNotYet is wrapped while a device may still appear.
var errNotYet = errors.New("device not present yet")

// node is a resolved block device.
type node struct {
	Path  string // path below the dev root, e.g. /dev/vda3
	Major uint32
	Minor uint32
}

// Dev is the major:minor form the kernel accepts in device-mapper tables.
func (n node) Dev() string { return fmt.Sprintf("%d:%d", n.Major, n.Minor) }

// blockDevs resolves device specs against a sysfs tree and a /dev tree.
// Production uses /sys and /dev; tests use a fake sysfs in a temporary
// directory and disk image files in place of device nodes.
type blockDevs struct {
	sys string // sysfs mount point
	dev string // devtmpfs mount point
}

var majorMinorRE = regexp.MustCompile(`^[0-9]+:[0-9]+$`)

// isDeviceSpec reports whether a device-mapper table argument names a
// block device that /init should resolve and wait for.
func isDeviceSpec(s string) bool {
	return strings.HasPrefix(s, "/dev/") || strings.HasPrefix(s, "PARTUUID=") || strings.HasPrefix(s, "PARTLABEL=") || majorMinorRE.MatchString(s)
}

// wait resolves spec, retrying every interval until it resolves, a
// permanent error occurs, or timeout passes.
func (b blockDevs) wait(ctx context.Context, spec string, timeout time.Duration) (node, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := b.resolve(spec)
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
func (b blockDevs) resolve(spec string) (node, error) {
	switch {
	case strings.HasPrefix(spec, "PARTUUID="):
		return b.resolvePartUUID(spec)
	case strings.HasPrefix(spec, "PARTLABEL="):
		return b.resolvePartLabel(spec)
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
		return node{Path: spec, Major: unix.Major(st.Rdev), Minor: unix.Minor(st.Rdev)}, nil
	case majorMinorRE.MatchString(spec):
		name, err := b.nameOf(spec)
		if err != nil {
			return node{}, err
		}
		ma, mi, err := parseMajMin(spec)
		if err != nil {
			return node{}, err
		}
		return node{Path: "/dev/" + name, Major: ma, Minor: mi}, nil
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
func (b blockDevs) resolvePartUUID(spec string) (node, error) {
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
	if len(guid) != 36 {
		return node{}, fmt.Errorf("%w: %q: expected a 36-character GPT partition GUID", ErrUnsupportedSpec, spec)
	}
	return b.findPartition(spec, func(p gptPartition) bool { return sameGUID(p.UniqueID, guid) }, offset, false)
}

// resolvePartLabel handles PARTLABEL=<name>: the partition whose GPT name
// is name. A name on more than one disk is an error: which one is meant
// cannot be told.
func (b blockDevs) resolvePartLabel(spec string) (node, error) {
	name := strings.TrimPrefix(spec, "PARTLABEL=")
	if name == "" {
		return node{}, fmt.Errorf("%w: %q: expected a partition name after PARTLABEL=", ErrUnsupportedSpec, spec)
	}
	return b.findPartition(spec, func(p gptPartition) bool { return p.Name == name }, 0, true)
}

// findPartition reads the GPT of every whole disk and returns the
// partition offset slots after the first entry that match accepts. With
// unique, a match on a second disk is an error.
func (b blockDevs) findPartition(spec string, match func(gptPartition) bool, offset int, unique bool) (node, error) {
	devs, err := b.list()
	if err != nil {
		return node{}, err
	}
	var problems []error
	var found *node
	var foundOn string
	for _, d := range devs {
		if d.partition != 0 || strings.HasPrefix(d.name, "dm-") || strings.HasPrefix(d.name, "loop") || strings.HasPrefix(d.name, "ram") {
			continue
		}
		parts, err := b.readDiskGPT(d.name)
		if err != nil {
			if !errors.Is(err, ErrNoGPT) {
				problems = append(problems, err)
			}
			continue
		}
		for _, p := range parts {
			if !match(p) {
				continue
			}
			if found != nil {
				return node{}, fmt.Errorf("resolve %q: partitions on both %s and %s match", spec, foundOn, d.name)
			}
			want := p.Number + offset
			var n *node
			for _, c := range devs {
				if c.parent == d.name && c.partition == want {
					ma, mi, err := parseMajMin(c.dev)
					if err != nil {
						return node{}, fmt.Errorf("resolve %q: %s: %w", spec, c.name, err)
					}
					n = &node{Path: "/dev/" + c.name, Major: ma, Minor: mi}
				}
			}
			if n == nil {
				return node{}, fmt.Errorf("resolve %q: partition %d of %s: %w", spec, want, d.name, errNotYet)
			}
			if !unique {
				return *n, nil
			}
			found, foundOn = n, d.name
			break
		}
	}
	if found != nil {
		return *found, nil
	}
	return node{}, fmt.Errorf("resolve %q: no disk has a GPT partition that matches: %w", spec, errors.Join(append(problems, errNotYet)...))
}

func (b blockDevs) readDiskGPT(disk string) ([]gptPartition, error) {
	bs := 512
	if v, err := os.ReadFile(filepath.Join(b.sys, "block", disk, "queue/logical_block_size")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(v))); err == nil {
			bs = n
		}
	}
	p := filepath.Join(b.dev, disk)
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open disk %q: %w", p, err)
	}
	defer f.Close()
	size, err := f.Seek(0, 2)
	if err != nil {
		return nil, fmt.Errorf("size disk %q: %w", p, err)
	}
	parts, err := readGPT(f, bs, size)
	if err != nil {
		return nil, fmt.Errorf("read partition table of %q: %w", p, err)
	}
	return parts, nil
}

// rewriteTable replaces every device spec in a target's parameters with
// major:minor, waiting for each device to appear.
func (b blockDevs) rewriteTable(ctx context.Context, params string, timeout time.Duration) (string, error) {
	f := strings.Fields(params)
	for i, w := range f {
		if !isDeviceSpec(w) {
			continue
		}
		n, err := b.wait(ctx, w, timeout)
		if err != nil {
			return "", err
		}
		f[i] = n.Dev()
	}
	return strings.Join(f, " "), nil
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
