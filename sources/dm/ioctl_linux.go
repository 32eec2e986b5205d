package dm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ControlPath is where devtmpfs creates the device-mapper control node.
const ControlPath = "/dev/mapper/control"

// ioctlVersion is the interface version sent with every request. The kernel
// accepts any request whose major version matches and whose minor version is
// not newer than its own, so 4.0.0 works with every kernel since 2.6.
var ioctlVersion = [3]uint32{4, 0, 0}

// statusBufSize is the first buffer size tried for replies that carry data.
const statusBufSize = 16 << 10

// maxBufSize bounds how far a reply buffer grows when the kernel reports
// DM_BUFFER_FULL_FLAG.
const maxBufSize = 4 << 20

// Version is the device-mapper ioctl interface version of the running kernel.
type Version struct{ Major, Minor, Patch uint32 }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Info describes a device-mapper device the kernel created.
type Info struct {
	Name  string
	Major uint32
	Minor uint32
}

// Path is the devtmpfs node of the device, /dev/dm-<minor>.
func (i Info) Path() string { return fmt.Sprintf("/dev/dm-%d", i.Minor) }

// Control is an open /dev/mapper/control. It is not safe for concurrent use.
type Control struct {
	f *os.File
}

// OpenControl opens the device-mapper control node at path (normally
// ControlPath) and checks that the kernel speaks interface version 4.
func OpenControl(ctx context.Context, path string) (*Control, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open device-mapper control %q: %w", path, err)
	}
	c := &Control{f: f}
	v, err := c.Version(ctx)
	if err != nil {
		f.Close()
		return nil, err
	}
	if v.Major != ioctlVersion[0] {
		f.Close()
		return nil, fmt.Errorf("check device-mapper version: kernel speaks %s, need %d.x", v, ioctlVersion[0])
	}
	return c, nil
}

// Close closes the control node.
func (c *Control) Close() error { return c.f.Close() }

// Version asks the kernel for its device-mapper interface version.
func (c *Control) Version(ctx context.Context) (Version, error) {
	hdr, _, err := c.call(ctx, unix.DM_VERSION, "DM_VERSION", request{})
	if err != nil {
		return Version{}, err
	}
	return Version{hdr.Version[0], hdr.Version[1], hdr.Version[2]}, nil
}

// Create creates device d, loads its table and activates it (the
// create/load/resume sequence of dmsetup create). If loading or resuming
// fails, the half-made device is removed again.
func (c *Control) Create(ctx context.Context, d Device) (Info, error) {
	if len(d.Targets) == 0 {
		return Info{}, fmt.Errorf("create device %q: no targets", d.Name)
	}
	table, err := tablePayload(d.Targets)
	if err != nil {
		return Info{}, fmt.Errorf("create device %q: %w", d.Name, err)
	}
	req := request{name: d.Name, uuid: d.UUID}
	if d.Minor >= 0 {
		req.flags |= unix.DM_PERSISTENT_DEV_FLAG
		req.dev = unix.Mkdev(0, uint32(d.Minor))
	}
	if _, _, err := c.call(ctx, unix.DM_DEV_CREATE, "DM_DEV_CREATE", req); err != nil {
		return Info{}, err
	}
	load := request{name: d.Name, targets: uint32(len(d.Targets)), payload: table}
	if d.ReadOnly {
		load.flags |= unix.DM_READONLY_FLAG
	}
	if _, _, err := c.call(ctx, unix.DM_TABLE_LOAD, "DM_TABLE_LOAD", load); err != nil {
		return Info{}, errors.Join(err, c.Remove(context.WithoutCancel(ctx), d.Name))
	}
	hdr, _, err := c.call(ctx, unix.DM_DEV_SUSPEND, "DM_DEV_SUSPEND (resume)", request{name: d.Name})
	if err != nil {
		return Info{}, errors.Join(err, c.Remove(context.WithoutCancel(ctx), d.Name))
	}
	return Info{Name: d.Name, Major: unix.Major(hdr.Dev), Minor: unix.Minor(hdr.Dev)}, nil
}

// Remove removes the device called name.
func (c *Control) Remove(ctx context.Context, name string) error {
	_, _, err := c.call(ctx, unix.DM_DEV_REMOVE, "DM_DEV_REMOVE", request{name: name})
	return err
}

// Status returns the status line of each target of device name, e.g.
// "V" for a verity target whose data verified so far.
func (c *Control) Status(ctx context.Context, name string) ([]Target, error) {
	return c.targets(ctx, name, 0)
}

// Table returns the active table of device name, with devices written as
// major:minor.
func (c *Control) Table(ctx context.Context, name string) ([]Target, error) {
	return c.targets(ctx, name, unix.DM_STATUS_TABLE_FLAG)
}

func (c *Control) targets(ctx context.Context, name string, flags uint32) ([]Target, error) {
	_, buf, err := c.call(ctx, unix.DM_TABLE_STATUS, "DM_TABLE_STATUS", request{name: name, flags: flags, size: statusBufSize})
	if err != nil {
		return nil, err
	}
	ts, err := parseReply(buf)
	if err != nil {
		return nil, fmt.Errorf("parse DM_TABLE_STATUS reply for %q: %w", name, err)
	}
	return ts, nil
}

// call issues one ioctl and returns the reply header and the whole reply
// buffer. When the kernel reports that the buffer was too small the call is
// repeated with a larger one.
func (c *Control) call(ctx context.Context, cmd uint, op string, req request) (unix.DmIoctl, []byte, error) {
	for {
		if err := ctx.Err(); err != nil {
			return unix.DmIoctl{}, nil, fmt.Errorf("device-mapper %s %q: %w", op, req.name, err)
		}
		buf, err := marshalRequest(req)
		if err != nil {
			return unix.DmIoctl{}, nil, fmt.Errorf("device-mapper %s %q: %w", op, req.name, err)
		}
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, c.f.Fd(), uintptr(cmd), uintptr(unsafe.Pointer(&buf[0])))
		if errno != 0 {
			return unix.DmIoctl{}, nil, fmt.Errorf("device-mapper %s %q: %w", op, req.name, errno)
		}
		hdr := headerOf(buf)
		if hdr.Flags&unix.DM_BUFFER_FULL_FLAG != 0 && len(buf) < maxBufSize {
			req.size = 4 * len(buf)
			continue
		}
		return hdr, buf, nil
	}
}

// request holds the fields of one ioctl call.
type request struct {
	name    string
	uuid    string
	flags   uint32
	dev     uint64
	targets uint32
	payload []byte
	size    int // minimum buffer size, for replies with data
}

// marshalRequest lays out a struct dm_ioctl followed by the payload.
func marshalRequest(r request) ([]byte, error) {
	var hdr unix.DmIoctl
	if len(r.name) > MaxNameLen || bytes.IndexByte([]byte(r.name), 0) >= 0 {
		return nil, fmt.Errorf("device name %q: must be at most %d bytes without NUL", r.name, MaxNameLen)
	}
	if len(r.uuid) > MaxUUIDLen || bytes.IndexByte([]byte(r.uuid), 0) >= 0 {
		return nil, fmt.Errorf("device uuid %q: must be at most %d bytes without NUL", r.uuid, MaxUUIDLen)
	}
	size := unix.SizeofDmIoctl + len(r.payload)
	size = max(size, r.size)
	size = align8(size)
	hdr.Version = ioctlVersion
	hdr.Data_size = uint32(size)
	hdr.Data_start = unix.SizeofDmIoctl
	hdr.Target_count = r.targets
	hdr.Flags = r.flags
	hdr.Dev = r.dev
	copy(hdr.Name[:], r.name)
	copy(hdr.Uuid[:], r.uuid)
	buf := make([]byte, size)
	copy(buf, (*[unix.SizeofDmIoctl]byte)(unsafe.Pointer(&hdr))[:])
	copy(buf[unix.SizeofDmIoctl:], r.payload)
	return buf, nil
}

// headerOf copies the struct dm_ioctl at the start of buf.
func headerOf(buf []byte) unix.DmIoctl {
	var hdr unix.DmIoctl
	copy((*[unix.SizeofDmIoctl]byte)(unsafe.Pointer(&hdr))[:], buf)
	return hdr
}

// tablePayload encodes targets for DM_TABLE_LOAD: each struct dm_target_spec
// is followed by its NUL-terminated parameters, padded to 8 bytes; "next" is
// the offset from this spec to the following one.
func tablePayload(targets []Target) ([]byte, error) {
	var out []byte
	for i, t := range targets {
		if len(t.Type) == 0 || len(t.Type) > MaxTypeLen {
			return nil, fmt.Errorf("target %d: type %q must be 1 to %d bytes", i+1, t.Type, MaxTypeLen)
		}
		if bytes.IndexByte([]byte(t.Params), 0) >= 0 || bytes.IndexByte([]byte(t.Type), 0) >= 0 {
			return nil, fmt.Errorf("target %d: contains NUL", i+1)
		}
		n := align8(unix.SizeofDmTargetSpec + len(t.Params) + 1)
		spec := unix.DmTargetSpec{Sector_start: t.Start, Length: t.Length, Next: uint32(n)}
		copy(spec.Target_type[:], t.Type)
		rec := make([]byte, n)
		copy(rec, (*[unix.SizeofDmTargetSpec]byte)(unsafe.Pointer(&spec))[:])
		copy(rec[unix.SizeofDmTargetSpec:], t.Params)
		out = append(out, rec...)
	}
	return out, nil
}

// parseReply decodes the targets of a DM_TABLE_STATUS reply. In replies,
// "next" is the offset of the following spec from the start of the data
// area. All offsets are bounds-checked.
func parseReply(buf []byte) ([]Target, error) {
	if len(buf) < unix.SizeofDmIoctl {
		return nil, fmt.Errorf("reply of %d bytes is shorter than its header", len(buf))
	}
	hdr := headerOf(buf)
	if hdr.Flags&unix.DM_BUFFER_FULL_FLAG != 0 {
		return nil, errors.New("reply truncated: buffer full")
	}
	end := uint64(hdr.Data_size)
	if end > uint64(len(buf)) {
		return nil, fmt.Errorf("data size %d beyond buffer of %d bytes", end, len(buf))
	}
	start := uint64(hdr.Data_start)
	if start > end {
		return nil, fmt.Errorf("data start %d beyond data size %d", start, end)
	}
	if hdr.Target_count > MaxTargets {
		return nil, fmt.Errorf("%d targets, at most %d expected", hdr.Target_count, MaxTargets)
	}
	data := buf[start:end]
	var out []Target
	off := uint64(0)
	for i := uint32(0); i < hdr.Target_count; i++ {
		if off+unix.SizeofDmTargetSpec > uint64(len(data)) {
			return nil, fmt.Errorf("target %d at offset %d: beyond data area of %d bytes", i+1, off, len(data))
		}
		var spec unix.DmTargetSpec
		copy((*[unix.SizeofDmTargetSpec]byte)(unsafe.Pointer(&spec))[:], data[off:])
		rest := data[off+unix.SizeofDmTargetSpec:]
		nul := bytes.IndexByte(rest, 0)
		if nul < 0 {
			return nil, fmt.Errorf("target %d: parameters not NUL-terminated", i+1)
		}
		out = append(out, Target{
			Start:  spec.Sector_start,
			Length: spec.Length,
			Type:   cString(spec.Target_type[:]),
			Params: string(rest[:nul]),
		})
		if i+1 < hdr.Target_count && uint64(spec.Next) <= off {
			return nil, fmt.Errorf("target %d: next offset %d does not advance past %d", i+1, spec.Next, off)
		}
		off = uint64(spec.Next)
	}
	return out, nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func align8(n int) int { return (n + 7) &^ 7 }
