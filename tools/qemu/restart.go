package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// A guest reboot (Options.Reboot) is a power cycle: QEMU runs with
// -no-reboot, so a guest reset ends the process, and the VM starts a new
// QEMU process with the same disks, firmware variables, console and API
// socket. QEMU's own in-place reset is not used because, under software
// emulation with two vCPUs, OVMF's multi-processor start after a warm
// reset can wait forever for an AP that never takes its start-up IPI (the
// BSP spins, the console stops after "reboot: machine restart" or
// "Welcome to GRUB!"); a cold start of a new process has not shown it.
// Talos's QEMU launcher restarts QEMU on a guest reboot in the same way.
//
// QEMU tells a guest reset from a power-off only on its monitor: the
// SHUTDOWN event's reason is "guest-reset" for a reset (a reboot, a triple
// fault) and "guest-shutdown" for a power-off. Each process gets a QMP
// monitor on a socket pair for it.

// qmpReason reads QEMU's QMP monitor on c until it ends and returns the
// reason of the last SHUTDOWN event ("" if there was none). It answers the
// greeting with qmp_capabilities, without which QEMU sends no events.
func qmpReason(c io.ReadWriter) string {
	dec := json.NewDecoder(c)
	var greeting struct {
		QMP json.RawMessage `json:"QMP"`
	}
	if err := dec.Decode(&greeting); err != nil || greeting.QMP == nil {
		return ""
	}
	if _, err := io.WriteString(c, `{"execute":"qmp_capabilities"}`+"\n"); err != nil {
		return ""
	}
	reason := ""
	for {
		var msg struct {
			Event string `json:"event"`
			Data  struct {
				Reason string `json:"reason"`
			} `json:"data"`
		}
		if err := dec.Decode(&msg); err != nil {
			return reason
		}
		if msg.Event == "SHUTDOWN" {
			reason = msg.Data.Reason
		}
	}
}

// guestReset is the SHUTDOWN reason of a guest reset.
const guestReset = "guest-reset"

// port is the host end of the API bridge's serial port across QEMU
// processes: each process gets a channel of its own (attach), and the
// port reads and writes whichever is current, as a serial port outlives a
// power cycle of the machine it is plugged into. A read that reaches the
// end of one channel waits for the next. Bytes written while no QEMU runs
// are lost, as bytes meant for a rebooting guest are; the bridge's
// protocol resynchronises on the next guest's Hello.
type port struct {
	mu     sync.Mutex
	cond   *sync.Cond
	conn   net.Conn
	closed bool
}

func newPort() *port {
	p := &port{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// attach makes c the current channel and closes the one before it.
func (p *port) attach(c net.Conn) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		return
	}
	old := p.conn
	p.conn = c
	p.cond.Broadcast()
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// next waits for a current channel other than ended; io.EOF once the port
// is closed.
func (p *port) next(ended net.Conn) (net.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.closed && (p.conn == nil || p.conn == ended) {
		p.cond.Wait()
	}
	if p.closed {
		return nil, io.EOF
	}
	return p.conn, nil
}

func (p *port) Read(b []byte) (int, error) {
	var ended net.Conn
	for {
		c, err := p.next(ended)
		if err != nil {
			return 0, err
		}
		n, err := c.Read(b)
		if n > 0 || err == nil {
			return n, nil
		}
		// This QEMU process has gone; wait for the next one's channel.
		ended = c
	}
}

func (p *port) Write(b []byte) (int, error) {
	c, err := p.next(nil)
	if err != nil {
		return 0, err
	}
	if _, err := c.Write(b); err != nil {
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return 0, io.ErrClosedPipe
		}
	}
	return len(b), nil
}

// Close ends the port: reads return io.EOF and writes fail.
func (p *port) Close() error {
	p.mu.Lock()
	p.closed = true
	c := p.conn
	p.cond.Broadcast()
	p.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}

// overlays puts a qcow2 overlay over each of opts' disk images when a
// snapshot must survive guest reboots (Options.Snapshot with
// Options.Reboot): QEMU's snapshot=on would lose the guest's writes with
// each process. The overlays are in a new directory under work, which
// vm.cleanup removes. It returns opts with the overlays as its disks.
func overlays(ctx context.Context, opts Options, vm *VM, work string) (Options, error) {
	if !opts.Snapshot || !opts.Reboot {
		return opts, nil
	}
	dir, err := os.MkdirTemp(work, "snapshot-")
	if err != nil {
		return opts, fmt.Errorf("create directory of snapshot overlays: %w", err)
	}
	vm.overlayDir = dir
	over := func(img, name string) (string, error) {
		abs, err := filepath.Abs(img)
		if err != nil {
			return "", fmt.Errorf("find disk image %s: %w", img, err)
		}
		out := filepath.Join(dir, name)
		cmd := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", abs, out)
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("create snapshot overlay of %s (qemu-img, Debian package qemu-utils): %w: %s", img, err, b)
		}
		return out, nil
	}
	if opts.Image, err = over(opts.Image, "disk.qcow2"); err != nil {
		return opts, err
	}
	if opts.DataImage != "" {
		if opts.DataImage, err = over(opts.DataImage, "data.qcow2"); err != nil {
			return opts, err
		}
	}
	opts.Snapshot = false
	opts.diskFormat = "qcow2"
	return opts, nil
}
