// Command apiclient talks to the Petrel settings API. On a host it is a
// link to the multi-call binary (cmd/petrel); this main is the same client
// for the build machine, where developers and tests drive a VM's API
// through a forwarded socket: go run ./cmd/apiclient --socket-path PATH ...
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/petrel-os/petrel/sources/apiclient"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := apiclient.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
