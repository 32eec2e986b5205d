// Command api-bridge is the guest agent of the API bridge: it carries the
// connections that the machine running the VM opens over a virtio-serial
// port to the API socket. It ships only in images with the debug-api image
// feature; see package bridge and docs/vm.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/petrel-os/petrel/sources/bridge"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := bridge.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
