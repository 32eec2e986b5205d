package guestinfo

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrNotVMware is returned when the machine is not a VMware VM (or not
// amd64): there is no guestinfo to read.
var ErrNotVMware = errors.New("not a VMware virtual machine")

// ErrBackdoorFault is returned when CPUID says VMware but the backdoor
// call faulted, as it does when the VM restricts the backdoor to the
// kernel.
var ErrBackdoorFault = errors.New("VMware backdoor call faulted")

// KeyPrefix starts every key a guest may read.
const KeyPrefix = "guestinfo."

// Reader reads guestinfo keys. The zero Reader uses the hypervisor's
// backdoor port, after checking with CPUID that this is VMware.
type Reader struct {
	// Port, when set, replaces the backdoor port and skips the CPUID
	// check (a fake hypervisor in tests).
	Port Port
}

// Get returns the value of key, which must start with "guestinfo.". ok is
// false when the key is not set (the hypervisor answered "0 ..."). Off
// VMware the error is ErrNotVMware and no port is touched.
func (r Reader) Get(ctx context.Context, key string) (value string, ok bool, err error) {
	if err := checkKey(key); err != nil {
		return "", false, err
	}
	p := r.Port
	if p == nil {
		if !IsVMware() {
			return "", false, fmt.Errorf("read %s: %w", key, ErrNotVMware)
		}
		p = hostPort{}
	}
	reply, err := Exchange(ctx, p, "info-get "+key)
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", key, err)
	}
	value, ok, err = ParseReply(reply)
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", key, err)
	}
	return value, ok, nil
}

// checkKey accepts "guestinfo." followed by printable ASCII without
// spaces, the characters a .vmx key can hold.
func checkKey(key string) error {
	name, found := strings.CutPrefix(key, KeyPrefix)
	if !found || name == "" {
		return fmt.Errorf("guestinfo key %q: expected %q followed by a name", key, KeyPrefix)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("guestinfo key %q: byte %#02x at %d, expected printable ASCII without spaces", key, c, len(KeyPrefix)+i)
		}
	}
	return nil
}

// ParseReply splits the reply to an RPCI command: "1 <value>" (or a bare
// "1") is success with value; "0" or "0 <message>" is failure, which for
// info-get means the key is not set ("0 No value found"). Anything else is
// an error wrapping ErrRPC.
func ParseReply(reply []byte) (value string, ok bool, err error) {
	if len(reply) == 0 {
		return "", false, fmt.Errorf("parse RPCI reply: %w: empty, expected \"1 <value>\" or \"0 <message>\"", ErrRPC)
	}
	rest := reply[1:]
	if len(rest) > 0 {
		if rest[0] != ' ' {
			return "", false, fmt.Errorf("parse RPCI reply %q: %w: expected a space after the status digit", quoteStart(reply), ErrRPC)
		}
		rest = rest[1:]
	}
	switch reply[0] {
	case '1':
		return string(rest), true, nil
	case '0':
		return "", false, nil
	}
	return "", false, fmt.Errorf("parse RPCI reply %q: %w: status %q, expected '1' or '0'", quoteStart(reply), ErrRPC, reply[0])
}

// quoteStart returns the first 40 bytes of b for an error message.
func quoteStart(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
