package gpt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// ReadFile reads the partition table of a disk image or block device: a
// block device with its logical block size (DeviceBlockSize), anything
// else with 512-byte blocks.
func ReadFile(ctx context.Context, path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read GPT of %q: %w", path, err)
	}
	defer f.Close()
	t, err := ReadOpen(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("read GPT of %q: %w", path, err)
	}
	return t, nil
}

// ReadOpen reads the partition table of an open disk image or block
// device, sized by seeking to its end, with the block size of
// DeviceBlockSize.
func ReadOpen(ctx context.Context, f *os.File) (*Table, error) {
	size, bs, err := Geometry(f)
	if err != nil {
		return nil, err
	}
	return ReadBlocks(ctx, f, size, bs)
}

// Geometry returns the size in bytes and the logical block size of an
// open disk image or block device.
func Geometry(f *os.File) (size int64, blockSize int, err error) {
	if blockSize, err = DeviceBlockSize(f); err != nil {
		return 0, 0, err
	}
	if size, err = f.Seek(0, io.SeekEnd); err != nil {
		return 0, 0, fmt.Errorf("find size of %s: %w", f.Name(), err)
	}
	return size, blockSize, nil
}

// WriteFile writes t into the existing disk image or block device at path
// (see Write for which bytes change) and syncs it. A zero t.BlockSize
// means the device's block size; a different one is an error.
func WriteFile(ctx context.Context, path string, t *Table) (err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("write GPT of %q: %w", path, err)
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	size, bs, err := Geometry(f)
	if err != nil {
		return fmt.Errorf("write GPT of %q: %w", path, err)
	}
	tt := *t
	if tt.BlockSize == 0 {
		tt.BlockSize = bs
	}
	if tt.BlockSize != bs {
		return fmt.Errorf("write GPT of %q: table has %d-byte blocks, the disk %d-byte ones", path, tt.BlockSize, bs)
	}
	if err := Write(ctx, f, size, &tt); err != nil {
		return fmt.Errorf("write GPT of %q: %w", path, err)
	}
	return nil
}
