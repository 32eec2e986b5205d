//go:build !linux

package gpt

import "os"

// DeviceBlockSize returns 512: outside Linux only disk image files are
// read.
func DeviceBlockSize(*os.File) (int, error) { return SectorSize, nil }
