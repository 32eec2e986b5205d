package qcow2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	tmp, err := os.CreateTemp(filepath.Dir(outPath), "."+filepath.Base(outPath)+".*")
	if err != nil {
		return fmt.Errorf("create temporary file for %q: %w", outPath, err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer func() {
		if err != nil {
			os.Remove(tmpName)
		}
	}()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "convert", "-q", "-f", "raw", "-O", "qcow2", "-o", "compat=1.1", rawPath, tmpName)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("convert %q to qcow2: %w", rawPath, ctx.Err())
		}
		return fmt.Errorf("%w: convert %q to qcow2: %w: %s", ErrQemuImg, rawPath, err, bytes.TrimSpace(stderr.Bytes()))
	}
	f, err := os.OpenFile(tmpName, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open converted qcow2: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("chmod %q: %w", tmpName, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %q: %w", tmpName, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %q: %w", tmpName, err)
	}
	if err := os.Rename(tmpName, outPath); err != nil {
		return fmt.Errorf("rename qcow2 into place: %w", err)
	}
	return nil
}
