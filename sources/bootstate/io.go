package bootstate

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"unsafe"
)

// syncer is implemented by *os.File.
type syncer interface {
	Sync() error
}

// ReadWriterAt is a device that can be read and written at offsets, such as
// an *os.File of a disk or disk image.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// checkOffset rejects offsets that are not sector aligned: only an aligned
// sector is written atomically.
func checkOffset(offset int64) error {
	if offset < 0 || offset%BlockSize != 0 {
		return fmt.Errorf("grubenv offset %d is not a multiple of %d", offset, BlockSize)
	}
	return nil
}

// ReadEnv reads and parses the environment block at offset.
func ReadEnv(ctx context.Context, dev io.ReaderAt, offset int64) (*Env, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkOffset(offset); err != nil {
		return nil, fmt.Errorf("read grubenv: %w", err)
	}
	buf := alignedBlock()
	if _, err := dev.ReadAt(buf, offset); err != nil {
		return nil, fmt.Errorf("read grubenv at offset %d: %w", offset, err)
	}
	env, err := Parse(buf)
	if err != nil {
		return nil, fmt.Errorf("read grubenv at offset %d: %w", offset, err)
	}
	return env, nil
}

// Read reads the boot state from the environment block at offset. It also
// returns the whole block so that a later write keeps its other variables.
func Read(ctx context.Context, dev io.ReaderAt, offset int64) (State, *Env, error) {
	env, err := ReadEnv(ctx, dev, offset)
	if err != nil {
		return State{}, nil, err
	}
	s, err := FromEnv(env)
	if err != nil {
		return State{}, nil, fmt.Errorf("read boot state at offset %d: %w", offset, err)
	}
	return s, env, nil
}

// WriteEnv writes env as one aligned BlockSize write at offset, then calls
// Sync when dev has it. The buffer is aligned in memory too, so dev may be
// a file opened with O_DIRECT.
func WriteEnv(ctx context.Context, dev io.WriterAt, offset int64, env *Env) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkOffset(offset); err != nil {
		return fmt.Errorf("write grubenv: %w", err)
	}
	data, err := env.Encode()
	if err != nil {
		return fmt.Errorf("write grubenv: %w", err)
	}
	buf := alignedBlock()
	copy(buf, data)
	if _, err := dev.WriteAt(buf, offset); err != nil {
		return fmt.Errorf("write grubenv at offset %d: %w", offset, err)
	}
	if s, ok := dev.(syncer); ok {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("sync grubenv at offset %d: %w", offset, err)
		}
	}
	return nil
}

// Write writes a fresh environment block that holds only s. Use Update to
// change the state of an existing block and keep its other variables.
func Write(ctx context.Context, dev io.WriterAt, offset int64, s State) error {
	env, err := s.Env()
	if err != nil {
		return fmt.Errorf("write boot state: %w", err)
	}
	return WriteEnv(ctx, dev, offset, env)
}

// Update reads the block at offset, applies change to its state and writes
// the block back with every other variable kept. Nothing is written when
// change fails, or when the block would not change (a transition to the
// state the disk already has). It returns the state before and after.
func Update(ctx context.Context, dev ReadWriterAt, offset int64, change func(State) (State, error)) (before, after State, err error) {
	before, env, err := Read(ctx, dev, offset)
	if err != nil {
		return State{}, State{}, err
	}
	after, err = change(before)
	if err != nil {
		return before, before, err
	}
	old, err := env.Encode()
	if err != nil {
		return before, before, err
	}
	if err := after.ApplyTo(env); err != nil {
		return before, before, err
	}
	if now, err := env.Encode(); err == nil && bytes.Equal(now, old) {
		return before, after, nil
	}
	if err := WriteEnv(ctx, dev, offset, env); err != nil {
		return before, before, err
	}
	return before, after, nil
}

// alignedBlock returns a BlockSize buffer whose address is 4096-aligned, as
// O_DIRECT I/O requires.
func alignedBlock() []byte {
	const align = 4096
	raw := make([]byte, BlockSize+align)
	off := int(align - uintptr(unsafe.Pointer(&raw[0]))%align)
	if off == align {
		off = 0
	}
	return raw[off : off+BlockSize : off+BlockSize]
}
