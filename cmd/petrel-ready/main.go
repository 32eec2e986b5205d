// Command petrel-ready prints "petrel: host ready: ..." once a Petrel host
// is up; see package ready.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/petrel-os/petrel/sources/ready"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ready.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
