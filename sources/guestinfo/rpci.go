package guestinfo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// Backdoor constants: EAX, the port in DX's low half, the command in CX's
// low half.
const (
	magic        = 0x564D5868 // "VMXh"
	backdoorPort = 0x5658
	cmdMessage   = 30
)

// RPCI message types (CX high half of a cmdMessage call).
const (
	msgOpen = iota
	msgSendSize
	msgSendPayload
	msgRecvSize
	msgRecvPayload
	msgRecvStatus
	msgClose
)

// RPCI status bits (CX high half of a cmdMessage reply).
const (
	statusSuccess    = 0x0001
	statusDoRecv     = 0x0002
	statusCheckpoint = 0x0010
	statusHighBW     = 0x0080 // high-bandwidth port offered; not used
)

// Open parameters (BX of msgOpen).
const (
	protoRPCI  = 0x49435052 // "RPCI"
	flagCookie = 0x80000000
)

// MaxReply bounds the reply size the hypervisor may announce; it covers
// user data of 16 MiB in base64.
const MaxReply = 24 << 20

// checkpointRetries bounds how often a transfer interrupted by a VM
// checkpoint (snapshot, vMotion) is started again.
const checkpointRetries = 3

// ErrRPC marks a failed RPCI exchange: the hypervisor refused a step or
// answered out of protocol.
var ErrRPC = errors.New("RPCI exchange failed")

// Regs are the registers of one backdoor call: what goes in, and what the
// hypervisor leaves in them.
type Regs struct {
	AX, BX, CX, DX, SI, DI uint32
}

// Port performs one low-bandwidth backdoor call: load the registers,
// execute "in eax, dx", return the registers. The error is for a call that
// could not be made (a fault), not for a status the hypervisor returns.
type Port interface {
	Call(in Regs) (Regs, error)
}

// status is the RPCI status of a cmdMessage reply.
func status(r Regs) uint16 { return uint16(r.CX >> 16) }

// channel is one open RPCI channel.
type channel struct {
	port             Port
	id               uint16
	cookieHi, cookie uint32
}

// call makes one cmdMessage call of type typ on the channel.
func (c *channel) call(typ uint16, bx uint32) (Regs, error) {
	return c.port.Call(Regs{
		AX: magic,
		BX: bx,
		CX: uint32(typ)<<16 | cmdMessage,
		DX: uint32(c.id)<<16 | backdoorPort,
		SI: c.cookieHi,
		DI: c.cookie,
	})
}

// openChannel opens an RPCI channel, with a cookie if the hypervisor
// supports it (every ESXi since 4.x) and without one otherwise.
func openChannel(p Port) (*channel, error) {
	for _, flags := range []uint32{flagCookie, 0} {
		out, err := p.Call(Regs{AX: magic, BX: protoRPCI | flags, CX: msgOpen<<16 | cmdMessage, DX: backdoorPort})
		if err != nil {
			return nil, fmt.Errorf("open RPCI channel: %w", err)
		}
		if status(out)&statusSuccess == 0 {
			continue
		}
		c := &channel{port: p, id: uint16(out.DX >> 16)}
		if flags != 0 {
			c.cookieHi, c.cookie = out.SI, out.DI
		}
		return c, nil
	}
	return nil, fmt.Errorf("open RPCI channel: %w: refused by the hypervisor", ErrRPC)
}

// send sends msg: its size, then its bytes four at a time, little-endian,
// the last word padded with zeros.
func (c *channel) send(ctx context.Context, msg []byte) error {
	for try := 0; ; try++ {
		err := c.sendOnce(ctx, msg)
		if !errors.Is(err, errCheckpoint) || try == checkpointRetries {
			return err
		}
	}
}

// errCheckpoint is a transfer interrupted by a VM checkpoint; it is
// retried from the size.
var errCheckpoint = fmt.Errorf("%w: interrupted by a VM checkpoint", ErrRPC)

// refused is the error for a call the hypervisor did not complete.
func refused(r Regs) error {
	if status(r)&statusCheckpoint != 0 {
		return errCheckpoint
	}
	return fmt.Errorf("%w: status %#04x", ErrRPC, status(r))
}

func (c *channel) sendOnce(ctx context.Context, msg []byte) error {
	out, err := c.call(msgSendSize, uint32(len(msg)))
	if err != nil {
		return fmt.Errorf("send size of RPCI message on channel %d: %w", c.id, err)
	}
	if status(out)&statusSuccess == 0 {
		return fmt.Errorf("send size of RPCI message on channel %d: %w", c.id, refused(out))
	}
	for off := 0; off < len(msg); off += 4 {
		if off%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var w [4]byte
		copy(w[:], msg[off:])
		out, err := c.call(msgSendPayload, binary.LittleEndian.Uint32(w[:]))
		if err != nil {
			return fmt.Errorf("send RPCI message on channel %d: %w", c.id, err)
		}
		if status(out)&statusSuccess == 0 {
			return fmt.Errorf("send RPCI message on channel %d at byte %d: %w", c.id, off, refused(out))
		}
	}
	return nil
}

// receive receives the reply to the last message, bounded by max bytes.
func (c *channel) receive(ctx context.Context, max uint32) ([]byte, error) {
	for try := 0; ; try++ {
		b, err := c.receiveOnce(ctx, max)
		if !errors.Is(err, errCheckpoint) || try == checkpointRetries {
			return b, err
		}
	}
}

func (c *channel) receiveOnce(ctx context.Context, max uint32) ([]byte, error) {
	out, err := c.call(msgRecvSize, 0)
	if err != nil {
		return nil, fmt.Errorf("receive size of RPCI reply on channel %d: %w", c.id, err)
	}
	if status(out)&statusSuccess == 0 {
		return nil, fmt.Errorf("receive size of RPCI reply on channel %d: %w", c.id, refused(out))
	}
	if status(out)&statusDoRecv == 0 {
		return nil, nil // no reply waiting
	}
	if typ := out.DX >> 16; typ != msgSendSize {
		return nil, fmt.Errorf("receive size of RPCI reply on channel %d: %w: message type %d, expected %d (send size)", c.id, ErrRPC, typ, msgSendSize)
	}
	size := out.BX
	if size > max {
		c.fail()
		return nil, fmt.Errorf("receive RPCI reply on channel %d: %w: %d bytes, more than %d", c.id, ErrRPC, size, max)
	}
	buf := make([]byte, 0, size)
	for uint32(len(buf)) < size {
		if len(buf)%4096 == 0 {
			if err := ctx.Err(); err != nil {
				c.fail()
				return nil, err
			}
		}
		out, err := c.call(msgRecvPayload, statusSuccess)
		if err != nil {
			return nil, fmt.Errorf("receive RPCI reply on channel %d: %w", c.id, err)
		}
		if status(out)&statusSuccess == 0 {
			err := refused(out)
			if !errors.Is(err, errCheckpoint) {
				c.fail()
			}
			return nil, fmt.Errorf("receive RPCI reply on channel %d at byte %d: %w", c.id, len(buf), err)
		}
		if typ := out.DX >> 16; typ != msgSendPayload {
			c.fail()
			return nil, fmt.Errorf("receive RPCI reply on channel %d at byte %d: %w: message type %d, expected %d (send payload)", c.id, len(buf), ErrRPC, typ, msgSendPayload)
		}
		var w [4]byte
		binary.LittleEndian.PutUint32(w[:], out.BX)
		n := min(4, int(size)-len(buf))
		buf = append(buf, w[:n]...)
	}
	out, err = c.call(msgRecvStatus, statusSuccess)
	if err != nil {
		return nil, fmt.Errorf("acknowledge RPCI reply on channel %d: %w", c.id, err)
	}
	if status(out)&statusSuccess == 0 {
		return nil, fmt.Errorf("acknowledge RPCI reply on channel %d: %w", c.id, refused(out))
	}
	return buf, nil
}

// fail tells the hypervisor the reply was not taken; its own failure
// changes nothing, the channel is closed next.
func (c *channel) fail() { _, _ = c.call(msgRecvStatus, 0) }

// close closes the channel.
func (c *channel) close() error {
	out, err := c.call(msgClose, 0)
	if err != nil {
		return fmt.Errorf("close RPCI channel %d: %w", c.id, err)
	}
	if status(out)&statusSuccess == 0 {
		return fmt.Errorf("close RPCI channel %d: %w", c.id, refused(out))
	}
	return nil
}

// Exchange sends one RPCI command on a channel of its own and returns the
// raw reply (see ParseReply).
func Exchange(ctx context.Context, p Port, command string) (reply []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := openChannel(p)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := c.close(); err == nil {
			err = cerr
		}
	}()
	if err := c.send(ctx, []byte(command)); err != nil {
		return nil, err
	}
	return c.receive(ctx, MaxReply)
}
