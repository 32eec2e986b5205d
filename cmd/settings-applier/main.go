// Command settings-applier renders configuration files and restarts affected services.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/petrel-os/petrel/sources/render"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := render.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
