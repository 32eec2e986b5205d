package gpt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// ReadFile reads the partition table of a disk image or block device.
func ReadFile(ctx context.Context, path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read GPT of %q: %w", path, err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("read GPT of %q: find size: %w", path, err)
	}
	t, err := Read(ctx, f, size)
	if err != nil {
		return nil, fmt.Errorf("read GPT of %q: %w", path, err)
	}
	return t, nil
}

// WriteFile writes t into the existing disk image or block device at path
// (see Write for which bytes change) and syncs it.
func WriteFile(ctx context.Context, path string, t *Table) (err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("write GPT of %q: %w", path, err)
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("write GPT of %q: find size: %w", path, err)
	}
	if err := Write(ctx, f, size, t); err != nil {
		return fmt.Errorf("write GPT of %q: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write GPT of %q: sync: %w", path, err)
	}
	return nil
}
