// Command petrel-init is the /init of Petrel's initramfs: it sets up the
// dm-verity root and switches to it. Build it static: CGO_ENABLED=0.
package main

import (
	"context"
	"os"

	"github.com/petrel-os/petrel/sources/initramfs"
)

func main() {
	os.Exit(initramfs.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
