//go:build !linux

package partflip

import (
	"context"
	"os"
)

// lockDisk does nothing outside Linux, where partflip only reads images in
// tests of other packages.
func lockDisk(context.Context, *os.File, func()) error { return nil }
