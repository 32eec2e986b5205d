package dm

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits taken from the kernel's dm-init and dm-ioctl interfaces.
const (
	// MaxDevices is the most devices one dm-mod.create= value may define.
	MaxDevices = 256
	// MaxTargets is the most targets (table lines) one device may have.
	MaxTargets = 256
	// MaxNameLen is the longest device name, without the terminating NUL.
	MaxNameLen = 127
	// MaxUUIDLen is the longest device UUID, without the terminating NUL.
	MaxUUIDLen = 128
	// MaxTypeLen is the longest target type name, without the terminating NUL.
	MaxTypeLen = 15
)

// ErrSyntax is wrapped by every error ParseCreate returns for malformed input.
var ErrSyntax = errors.New("invalid dm-mod.create syntax")

// Target is one line of a device-mapper table.
type Target struct {
	Start  uint64 // first sector covered by this target
	Length uint64 // number of 512-byte sectors
	Type   string // target type, e.g. "verity" or "linear"
	Params string // target arguments, space separated
}

// String formats the target the way dmsetup and dm-mod.create= write it.
func (t Target) String() string {
	s := strconv.FormatUint(t.Start, 10) + " " + strconv.FormatUint(t.Length, 10) + " " + t.Type
	if t.Params != "" {
		s += " " + t.Params
	}
	return s
}

// Device is one device-mapper device to create.
type Device struct {
	Name     string
	UUID     string // empty for none
	Minor    int    // -1 lets the kernel choose
	ReadOnly bool
	Targets  []Target
}

// String formats the device in dm-mod.create= syntax.
func (d Device) String() string {
	var b strings.Builder
	b.WriteString(d.Name)
	b.WriteByte(',')
	b.WriteString(d.UUID)
	b.WriteByte(',')
	if d.Minor >= 0 {
		b.WriteString(strconv.Itoa(d.Minor))
	}
	if d.ReadOnly {
		b.WriteString(",ro")
	} else {
		b.WriteString(",rw")
	}
	for _, t := range d.Targets {
		b.WriteByte(',')
		b.WriteString(t.String())
	}
	return b.String()
}

// FormatCreate formats devices as a dm-mod.create= value (without the key).
func FormatCreate(devs []Device) string {
	parts := make([]string, len(devs))
	for i, d := range devs {
		parts[i] = d.String()
	}
	return strings.Join(parts, ";")
}

// ParseCreate parses the value of the dm-mod.create= kernel parameter:
//
//	<name>,<uuid>,<minor>,<flags>,<table>[,<table>...][;<name>,...]
//
// where flags is "ro" or "rw" and each table is
// "<start_sector> <num_sectors> <target_type> <target_args>". uuid and minor
// may be empty. One pair of double quotes around the whole value, as left by
// a boot loader, is removed. Every problem found is reported, joined, and
// each wraps ErrSyntax.
func ParseCreate(s string) ([]Device, error) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty value", ErrSyntax)
	}
	if strings.ContainsAny(s, "\x00\n") {
		return nil, fmt.Errorf("%w: contains a NUL or newline", ErrSyntax)
	}
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrSyntax}, args...)...))
	}
	chunks := strings.Split(s, ";")
	if len(chunks) > MaxDevices {
		fail("%d devices, at most %d allowed", len(chunks), MaxDevices)
		return nil, errors.Join(errs...)
	}
	devs := make([]Device, 0, len(chunks))
	names := map[string]int{}
	for i, chunk := range chunks {
		where := fmt.Sprintf("device %d", i+1)
		fields := strings.Split(chunk, ",")
		if len(fields) < 5 {
			fail("%s %q: expected <name>,<uuid>,<minor>,<flags>,<table>, found %d fields", where, chunk, len(fields))
			continue
		}
		d := Device{
			Name:  strings.TrimSpace(fields[0]),
			UUID:  strings.TrimSpace(fields[1]),
			Minor: -1,
		}
		if d.Name != "" {
			where = fmt.Sprintf("device %d (%q)", i+1, d.Name)
		}
		switch {
		case d.Name == "":
			fail("%s: name: must not be empty", where)
		case len(d.Name) > MaxNameLen:
			fail("%s: name: %d bytes, at most %d allowed", where, len(d.Name), MaxNameLen)
		case strings.ContainsAny(d.Name, "/\x00"):
			fail("%s: name: must not contain '/' or NUL", where)
		}
		if prev, ok := names[d.Name]; ok && d.Name != "" {
			fail("%s: name: already used by device %d", where, prev)
		}
		names[d.Name] = i + 1
		if len(d.UUID) > MaxUUIDLen {
			fail("%s: uuid: %d bytes, at most %d allowed", where, len(d.UUID), MaxUUIDLen)
		}
		if m := strings.TrimSpace(fields[2]); m != "" {
			n, err := strconv.ParseUint(m, 10, 20)
			if err != nil {
				fail("%s: minor %q: expected empty or a decimal number below 1048576", where, m)
			} else {
				d.Minor = int(n)
			}
		}
		switch f := strings.TrimSpace(fields[3]); f {
		case "ro":
			d.ReadOnly = true
		case "rw":
		default:
			fail("%s: flags %q: expected \"ro\" or \"rw\"", where, f)
		}
		tables := fields[4:]
		if len(tables) > MaxTargets {
			fail("%s: %d tables, at most %d allowed", where, len(tables), MaxTargets)
			tables = nil
		}
		var next uint64
		for j, tbl := range tables {
			t, err := parseTarget(tbl)
			if err != nil {
				fail("%s: table %d %q: %s", where, j+1, strings.TrimSpace(tbl), err)
				continue
			}
			if t.Start != next {
				fail("%s: table %d: starts at sector %d, expected %d (tables must be contiguous)", where, j+1, t.Start, next)
			}
			next = t.Start + t.Length
			d.Targets = append(d.Targets, t)
		}
		devs = append(devs, d)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return devs, nil
}

// parseTarget parses "<start> <length> <type> [params]".
func parseTarget(s string) (Target, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return Target{}, errors.New("expected <start_sector> <num_sectors> <target_type> <target_args>")
	}
	var t Target
	var err error
	if t.Start, err = strconv.ParseUint(f[0], 10, 64); err != nil {
		return Target{}, fmt.Errorf("start sector %q: expected a decimal number", f[0])
	}
	if t.Length, err = strconv.ParseUint(f[1], 10, 64); err != nil || t.Length == 0 {
		return Target{}, fmt.Errorf("sector count %q: expected a positive decimal number", f[1])
	}
	if t.Start+t.Length < t.Start {
		return Target{}, errors.New("start + length overflows")
	}
	t.Type = f[2]
	if len(t.Type) > MaxTypeLen {
		return Target{}, fmt.Errorf("target type %q: longer than %d bytes", t.Type, MaxTypeLen)
	}
	t.Params = strings.Join(f[3:], " ")
	return t, nil
}
