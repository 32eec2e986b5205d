package bootstate

import (
	"context"
	"fmt"
	"io"

	"github.com/petrel-os/petrel/sources/fat"
)

// EnvPath is where the environment block lives on the EFI system partition.
const EnvPath = "/EFI/BOOT/grubenv"

// ErrNotFound reports that EnvPath does not exist on the FAT filesystem.
// It is fat.ErrNotFound, so errors.Is matches either.
var ErrNotFound = fat.ErrNotFound

// LocateEnv returns the absolute byte offset of the environment block
// EnvPath inside the FAT filesystem that starts at espOffset on dev. The
// file must be exactly BlockSize bytes in one sector-aligned run, so that
// one aligned write replaces it. Names are matched as sources/fat does:
// long or short, without regard to case.
func LocateEnv(ctx context.Context, dev io.ReaderAt, espOffset int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	off, size, err := fat.FindFile(dev, espOffset, EnvPath)
	if err != nil {
		return 0, fmt.Errorf("locate %s on the FAT filesystem at %d: %w", EnvPath, espOffset, err)
	}
	if size != BlockSize {
		return 0, fmt.Errorf("locate %s on the FAT filesystem at %d: file is %d bytes, want %d (one sector)", EnvPath, espOffset, size, BlockSize)
	}
	if off%BlockSize != 0 {
		return 0, fmt.Errorf("locate %s on the FAT filesystem at %d: offset %d is not sector aligned", EnvPath, espOffset, off)
	}
	return off, nil
}
