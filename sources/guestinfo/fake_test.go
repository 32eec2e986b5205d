package guestinfo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// fakeVMX is an in-process hypervisor: the RPCI state machine behind the
// backdoor port, answering info-get from keys. It records every protocol
// violation by the guest.
type fakeVMX struct {
	keys map[string]string

	noCookie   bool   // refuse channels with a cookie, like very old hosts
	breakAt    int    // the n-th call (1-based) of type breakType fails; 0 never, -1 always
	breakType  uint16 // message type that breaks
	checkpoint bool   // breakAt reports a checkpoint instead of a plain failure
	wrongType  bool   // announce the reply with a wrong message type
	replySize  uint32 // announce this size instead of the real one (0: real)
	fault      bool   // every call fails as if the "in" faulted
	reply      string // answer every command with this, if set

	nextID     uint16
	channels   map[uint16]*fakeChannel
	calls      map[uint16]int // calls per message type
	violations []string
	commands   []string
}

type fakeChannel struct {
	cookieHi, cookie uint32
	state            string // "idle", "sending", "reply", "replying"
	in               []byte
	want             uint32
	out              []byte
	sent             int
}

func (f *fakeVMX) violate(format string, a ...any) {
	f.violations = append(f.violations, fmt.Sprintf(format, a...))
}

// fail is the answer to a refused step: every status bit clear.
func fail(in Regs) Regs { in.CX &= 0xffff; return in }

func ok(in Regs, st uint16) Regs { in.CX = uint32(st)<<16 | in.CX&0xffff; return in }

// Call implements Port.
func (f *fakeVMX) Call(in Regs) (Regs, error) {
	if f.fault {
		return Regs{}, fmt.Errorf("%w: fake fault", ErrBackdoorFault)
	}
	if f.channels == nil {
		f.channels = map[uint16]*fakeChannel{}
		f.calls = map[uint16]int{}
	}
	if in.AX != magic || in.DX&0xffff != backdoorPort || in.CX&0xffff != cmdMessage {
		f.violate("call %+v: not a message call on the backdoor port", in)
		return in, nil
	}
	typ := uint16(in.CX >> 16)
	f.calls[typ]++
	if typ == f.breakType && (f.breakAt < 0 || f.calls[typ] == f.breakAt) {
		if typ == msgClose {
			delete(f.channels, uint16(in.DX>>16)) // gone all the same
		}
		if f.checkpoint {
			return ok(in, statusCheckpoint), nil
		}
		return fail(in), nil
	}
	if typ == msgOpen {
		return f.open(in), nil
	}
	id := uint16(in.DX >> 16)
	c := f.channels[id]
	if c == nil || in.SI != c.cookieHi || in.DI != c.cookie {
		f.violate("call type %d on unknown channel %d or with a wrong cookie", typ, id)
		return fail(in), nil
	}
	switch typ {
	case msgSendSize:
		if c.state != "idle" && c.state != "sending" {
			f.violate("send size in state %s", c.state)
			return fail(in), nil
		}
		c.state, c.in, c.want = "sending", nil, in.BX
		if c.want == 0 {
			f.answer(c)
		}
		return ok(in, statusSuccess|statusHighBW), nil
	case msgSendPayload:
		if c.state != "sending" {
			f.violate("send payload in state %s", c.state)
			return fail(in), nil
		}
		var w [4]byte
		binary.LittleEndian.PutUint32(w[:], in.BX)
		n := min(4, int(c.want)-len(c.in))
		if strings.Trim(string(w[n:]), "\x00") != "" {
			f.violate("padding of the last word is %q", w[n:])
		}
		c.in = append(c.in, w[:n]...)
		if uint32(len(c.in)) == c.want {
			f.answer(c)
		}
		return ok(in, statusSuccess), nil
	case msgRecvSize:
		if c.state != "reply" && c.state != "replying" {
			return ok(in, statusSuccess), nil // nothing to receive
		}
		c.state, c.sent = "replying", 0
		out := ok(in, statusSuccess|statusDoRecv|statusHighBW)
		out.DX = uint32(msgSendSize)<<16 | in.DX&0xffff
		if f.wrongType {
			out.DX = uint32(msgSendPayload)<<16 | in.DX&0xffff
		}
		out.BX = uint32(len(c.out))
		if f.replySize != 0 {
			out.BX = f.replySize
		}
		return out, nil
	case msgRecvPayload:
		if c.state != "replying" || in.BX != statusSuccess {
			f.violate("receive payload in state %s with status %d", c.state, in.BX)
			return fail(in), nil
		}
		var w [4]byte
		copy(w[:], c.out[min(c.sent, len(c.out)):])
		c.sent += 4
		out := ok(in, statusSuccess)
		out.DX = uint32(msgSendPayload)<<16 | in.DX&0xffff
		out.BX = binary.LittleEndian.Uint32(w[:])
		return out, nil
	case msgRecvStatus:
		if c.state != "replying" {
			f.violate("receive status in state %s", c.state)
			return fail(in), nil
		}
		if in.BX == statusSuccess && c.sent < len(c.out) {
			f.violate("reply acknowledged after %d of %d bytes", c.sent, len(c.out))
		}
		c.state = "idle"
		return ok(in, statusSuccess), nil
	case msgClose:
		delete(f.channels, id)
		return ok(in, statusSuccess), nil
	}
	f.violate("unknown message type %d", typ)
	return fail(in), nil
}

func (f *fakeVMX) open(in Regs) Regs {
	if in.BX&^flagCookie != protoRPCI {
		f.violate("open with protocol %#x", in.BX)
		return fail(in)
	}
	cookie := in.BX&flagCookie != 0
	if cookie && f.noCookie {
		return fail(in)
	}
	f.nextID++
	c := &fakeChannel{state: "idle"}
	if cookie {
		c.cookieHi, c.cookie = 0xc0c0_0000|uint32(f.nextID), 0x1234_5678
	}
	f.channels[f.nextID] = c
	out := ok(in, statusSuccess)
	out.DX = uint32(f.nextID)<<16 | backdoorPort
	out.SI, out.DI = c.cookieHi, c.cookie
	if !cookie {
		out.SI, out.DI = 0xdead, 0xbeef // garbage the guest must ignore
	}
	return out
}

// answer runs the received command.
func (f *fakeVMX) answer(c *fakeChannel) {
	cmd := string(c.in)
	f.commands = append(f.commands, cmd)
	c.state = "reply"
	switch key, found := strings.CutPrefix(cmd, "info-get "); {
	case f.reply != "":
		c.out = []byte(f.reply)
	case !found:
		c.out = []byte("0 Unknown command")
	default:
		if v, set := f.keys[key]; set {
			c.out = []byte("1 " + v)
		} else {
			c.out = []byte("0 No value found")
		}
	}
}

// check reports violations and channels left open.
func (f *fakeVMX) check() error {
	var errs []error
	for _, v := range f.violations {
		errs = append(errs, errors.New(v))
	}
	for id := range f.channels {
		errs = append(errs, fmt.Errorf("channel %d left open", id))
	}
	return errors.Join(errs...)
}
