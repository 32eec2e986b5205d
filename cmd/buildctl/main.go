// Command buildctl builds Petrel packages, kits and variant images.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/petrel-os/petrel/tools/buildctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := buildctl.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
