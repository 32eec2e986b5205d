// Command petrel-hello prints the OS name and version.
package main

import (
	"context"
	"os"

	"github.com/petrel-os/petrel/sources/hello"
)

func main() {
	os.Exit(hello.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
