// Command early-boot-config applies user data to the launch transaction once per instance.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/petrel-os/petrel/sources/userdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := userdata.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
