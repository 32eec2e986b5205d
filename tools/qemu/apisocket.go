package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/petrel-os/petrel/sources/bridge"
)

// DefaultAPIWait is how long a connection to Options.APISocket waits for
// the guest by default: a boot under software emulation.
const DefaultAPIWait = 10 * time.Minute

// socketpair returns a connected pair: a file for QEMU's chardev and a
// connection for the bridge's host end.
func socketpair() (*os.File, net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	qemuEnd := os.NewFile(uintptr(fds[0]), "api-bridge-qemu")
	f := os.NewFile(uintptr(fds[1]), "api-bridge-host")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		qemuEnd.Close()
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return qemuEnd, c, nil
}

// serveAPI runs the bridge's host end on port and serves opts.APISocket
// until the VM ends.
func (vm *VM) serveAPI(opts Options, port io.ReadWriteCloser) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wait := opts.APIWait
	if wait <= 0 {
		wait = DefaultAPIWait
	}
	path := opts.APISocket
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		port.Close()
		return fmt.Errorf("create directory of API socket %s: %w", path, err)
	}
	// A socket file left by an earlier run would make Listen fail.
	if st, err := os.Lstat(path); err == nil && st.Mode().Type() == os.ModeSocket {
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		port.Close()
		return fmt.Errorf("serve API socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	vm.api = bridge.NewLink(bridge.Host, port, bridge.Options{Logger: log})
	vm.apiStop = cancel
	vm.apiDone.Go(func() {
		// The port ends (EOF) when the VM ends: the normal end.
		if err := vm.api.Run(ctx); err != nil && !errors.Is(err, io.EOF) {
			log.Info("API bridge stopped", "error", err)
		}
	})
	vm.apiDone.Go(func() {
		if err := bridge.Serve(ctx, ln, vm.api, wait, log); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Info("API socket stopped", "error", err)
		}
		os.Remove(path)
	})
	return nil
}

// stopAPI closes the bridge's port and stops serving the API socket.
func (vm *VM) stopAPI() {
	if vm.port != nil {
		vm.port.Close()
	}
	if vm.apiStop != nil {
		vm.apiStop()
		vm.apiDone.Wait()
	}
}

// WaitAPISession waits for the guest's bridge agent to say hello and
// returns its session, or 0 when timeout passes, QEMU exits or ctx ends
// first. udev starts the agent when its port appears, beside the units
// that host ready waits for, so the hello may come after host ready
// (docs/vm.md).
func (vm *VM) WaitAPISession(ctx context.Context, timeout time.Duration) uint32 {
	if vm.api == nil {
		return 0
	}
	// The link stops before done closes (run calls stopAPI first).
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return vm.api.WaitSession(ctx)
}

// APISession returns the bridge session of the guest's agent: 0 until the
// agent has said hello, a new number after each guest restart. It is 0
// without Options.APISocket.
func (vm *VM) APISession() uint32 {
	if vm.api == nil {
		return 0
	}
	return vm.api.Session()
}
