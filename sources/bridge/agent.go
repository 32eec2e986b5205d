package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/cli"
)

// PortName is the name of the virtio-serial port of the bridge. QEMU's
// `-device virtserialport,name=PortName` makes it, and the guest's udev
// links /dev/virtio-ports/PortName to it.
const PortName = "org.petrel.api.0"

// DefaultPortPath is where the guest agent finds the port.
const DefaultPortPath = "/dev/virtio-ports/" + PortName

// Main runs the guest agent, api-bridge:
//
//	api-bridge [--port PATH] [--socket PATH] [--log-level L]
//
// It serves the bridge on the virtio-serial port and connects each stream
// the host opens to the API socket, until it is stopped.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var port, socket, level string
	root := &cobra.Command{
		Use:   "api-bridge",
		Short: "Carry connections from the VM's host machine to the API socket over a virtio-serial port",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := cli.NewLogger(stderr, level, "api-bridge")
			if err != nil {
				return err
			}
			return RunAgent(cmd.Context(), port, socket, log)
		},
	}
	f := root.Flags()
	f.StringVar(&port, "port", DefaultPortPath, "virtio-serial port")
	f.StringVar(&socket, "socket", api.DefaultSocketPath, "API socket that streams connect to")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn or error")
	return cli.Run(ctx, root, args, stdout, stderr)
}

// RunAgent serves the guest end of the bridge on the port at portPath,
// connecting streams to the Unix socket at socket, until ctx ends. Open
// streams get a second to finish then, so that the answer to a reboot
// request still reaches the host.
func RunAgent(ctx context.Context, portPath, socket string, log *slog.Logger) error {
	f, err := openPort(ctx, portPath)
	if err != nil {
		return err
	}
	log.Info("serving the API socket on the bridge port", "port", portPath, "socket", socket)
	l := NewLink(Guest, &guestPort{f: f}, Options{
		Logger:       log,
		DrainTimeout: time.Second,
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	})
	if err := l.Run(ctx); err != nil {
		return fmt.Errorf("serve bridge port %s: %w", portPath, err)
	}
	return nil
}

// openPort opens the port, waiting a little for udev's link.
func openPort(ctx context.Context, path string) (*os.File, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return nil, fmt.Errorf("open bridge port: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("open bridge port: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// guestPort is a virtio-serial port seen from the guest. A read returns
// end of file while no host end is connected; that is a pause, not an
// end, so Read waits and tries again.
type guestPort struct{ f *os.File }

func (p *guestPort) Read(b []byte) (int, error) {
	for {
		n, err := p.f.Read(b)
		if n > 0 || !errors.Is(err, io.EOF) {
			return n, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *guestPort) Write(b []byte) (int, error) { return p.f.Write(b) }
func (p *guestPort) Close() error                { return p.f.Close() }
