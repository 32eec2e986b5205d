//go:build !linux

package partflip

import (
	"context"
	"os"
)

// lockDisk does nothing outside Linux: partflip changes boot state only on
// Linux hosts.
func lockDisk(context.Context, *os.File, func()) error { return nil }
