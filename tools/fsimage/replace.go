package fsimage

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// ReplaceFile replaces the file at path (absolute, inside the filesystem)
// of the ext4 filesystem that starts at byte offset of image with data. It
// edits the image in place with debugfs, rootless; boot-time measurements
// use it to swap a BOOT partition's initramfs.
func ReplaceFile(ctx context.Context, image string, offset int64, path string, data []byte) error {
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "\"\\\n") {
		return fmt.Errorf("replace %q in %s: want an absolute path without quotes or backslashes", path, image)
	}
	f, err := os.CreateTemp("", "fsimage-replace-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write temporary file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write temporary file: %w", err)
	}
	script := fmt.Sprintf("rm \"%s\"\nwrite \"%s\" \"%s\"\n", path, f.Name(), path)
	dev := fmt.Sprintf("%s?offset=%d", image, offset)
	if err := runDebugfs(ctx, os.Environ(), dev, []byte(script)); err != nil {
		return fmt.Errorf("replace %s in %s: %w", path, dev, err)
	}
	return nil
}
