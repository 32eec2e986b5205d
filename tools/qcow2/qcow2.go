package qcow2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/petrel-os/petrel/sources/outfile"
)

// ErrQemuImg marks a missing or failing qemu-img.
var ErrQemuImg = errors.New("qemu-img failed")

// Convert writes the raw image at rawPath as an uncompressed qcow2 v3
// (compat 1.1) file at outPath. It converts into a temporary file in the same
// directory, syncs it and renames it into place, so outPath is either the old
// file or the complete new one. The output is deterministic: qemu-img writes
// no timestamps or random IDs into qcow2.
func Convert(ctx context.Context, rawPath, outPath string) (err error) {
	bin, err := exec.LookPath("qemu-img")
	if err != nil {
		return fmt.Errorf("%w: find qemu-img (Debian package qemu-utils): %w", ErrQemuImg, err)
	}
	if _, err := os.Stat(rawPath); err != nil {
		return fmt.Errorf("stat raw image: %w", err)
	}
	tmp, err := outfile.Create(outPath)
	if err != nil {
		return err
	}
	defer tmp.Discard()
	tmpName := tmp.Name()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "convert", "-q", "-f", "raw", "-O", "qcow2", "-o", "compat=1.1", rawPath, tmpName)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("convert %q to qcow2: %w", rawPath, ctx.Err())
		}
		return fmt.Errorf("%w: convert %q to qcow2: %w: %s", ErrQemuImg, rawPath, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := tmp.Commit(); err != nil {
		return fmt.Errorf("write qcow2: %w", err)
	}
	return nil
}
