package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ConfigDriveLabel is the volume label of a user-data config drive, as in
// cloud-init's NoCloud data source; the drive holds a file named user-data.
const ConfigDriveLabel = "CIDATA"

// ConfigDrive writes a small FAT image at out, labelled CIDATA, holding
// userData as /user-data. It uses mkfs.vfat and mcopy (Debian packages
// dosfstools and mtools).
func ConfigDrive(ctx context.Context, userData []byte, out string) error {
	dir, err := os.MkdirTemp("", "petrel-cidata-")
	if err != nil {
		return fmt.Errorf("create config drive staging directory: %w", err)
	}
	defer os.RemoveAll(dir)
	ud := filepath.Join(dir, "user-data")
	if err := os.WriteFile(ud, userData, 0o644); err != nil {
		return fmt.Errorf("write user data: %w", err)
	}
	tmp := out + ".tmp"
	os.Remove(tmp)
	// 2 MiB: room for gzip'd or plain TOML user data.
	steps := [][]string{
		{"mkfs.vfat", "-C", "-n", ConfigDriveLabel, "-i", "43494441", tmp, "2048"},
		{"mcopy", "-i", tmp, ud, "::/user-data"},
	}
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, s[0], s[1:]...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if b, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("run %s for config drive: %w: %s", s[0], err, b)
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("place config drive: %w", err)
	}
	return nil
}
