package bank

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/imagecodec"
	"github.com/petrel-os/petrel/sources/verity"
)

var (
	// ErrTooLarge: an image does not fit its partition.
	ErrTooLarge = errors.New("image larger than its partition")
	// ErrReadBack: the bytes read back from the disk are not those
	// written.
	ErrReadBack = errors.New("read-back differs from what was written")
	// ErrNotWritten: Check was called before every part was written.
	ErrNotWritten = errors.New("not written")
)

// TooLargeError is an image that does not fit its partition; nothing was
// written past the partition's end.
type TooLargeError struct {
	Part      Part
	Partition Extent
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s image does not fit partition %d (%s) of %d bytes", e.Part, e.Partition.Number, e.Partition.Label, e.Partition.Size)
}

func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// ReadBackError is a partition whose bytes, read back from the device,
// are not those written.
type ReadBackError struct {
	Part      Part
	Partition Extent
	// Want and Got are SHA-256 digests (hex) of the Length bytes written
	// and read back.
	Want, Got string
	Length    int64
}

func (e *ReadBackError) Error() string {
	return fmt.Sprintf("%s image read back from partition %d (%s): sha256 of its %d bytes is %s, wrote %s",
		e.Part, e.Partition.Number, e.Partition.Label, e.Length, e.Got, e.Want)
}

func (e *ReadBackError) Unwrap() error { return ErrReadBack }

// Source streams one compressed image to w and reports whether every byte
// it gave was the right one (a TUF download checks the signed length and
// hash at the end): what a Writer wrote counts only when it returns nil.
type Source func(w io.Writer) error

// written is what Write recorded of a part.
type written struct {
	n   int64
	sum []byte // SHA-256 of the decompressed bytes
}

// Writer writes the images of one bank. It is not safe for concurrent
// use.
type Writer struct {
	f       *os.File
	disk    string
	layout  Layout
	written map[Part]written
	device  time.Duration // in the device's writes, writeback and sync
}

// writeback is how many bytes a part writes before it asks the kernel to
// start writing them to the device, so that dirty pages never pile up in
// the page cache of a host with little memory.
const writeback = 16 << 20

// Open opens disk (the OS disk's device node, or a disk image) for writing
// bank b, whose partitions it finds in the disk's GPT (Find).
func Open(ctx context.Context, disk string, b bootstate.Bank) (*Writer, error) {
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open disk for writing bank %s: %w", b, err)
	}
	t, err := gpt.ReadOpen(ctx, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read GPT of %s: %w", disk, err)
	}
	l, err := Find(t, b)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", disk, err)
	}
	return &Writer{f: f, disk: disk, layout: l, written: map[Part]written{}}, nil
}

// DeviceTime is the time the Writer has spent in the device's writes,
// their writeback and Sync: what a plain copy of the same decompressed
// bytes from memory into the partitions would cost at least. The rest of
// an update's time is download, decompression and hashing.
func (w *Writer) DeviceTime() time.Duration { return w.device }

// Layout returns where the bank's partitions are.
func (w *Writer) Layout() Layout { return w.layout }

// Close closes the disk.
func (w *Writer) Close() error { return w.f.Close() }

// errAbandoned stops a source whose image the Writer gave up on.
var errAbandoned = errors.New("image abandoned by the writer")

// Write streams part p's compressed image from src, decompressed, into
// its partition from the partition's first byte, and returns the number
// of bytes written. It stops at the partition's end (TooLargeError). The
// source's error comes first: bytes written from a source that failed
// (a hash that differs from the signed one) do not count, and the
// partition then holds garbage until it is written again.
func (w *Writer) Write(ctx context.Context, p Part, src Source) (int64, error) {
	ext := w.layout.Extent(p)
	delete(w.written, p)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := src(pw)
		pw.CloseWithError(err) // nil: the decompressor sees the end
		done <- err
	}()
	dst := &partWriter{f: w.f, off: ext.Offset, size: ext.Size, sum: sha256.New(), device: &w.device}
	buf := bufio.NewWriterSize(dst, 1<<20)
	n, derr := imagecodec.Decompress(ctx, buf, pr, ext.Size)
	if derr == nil {
		derr = buf.Flush()
		n = dst.n
	}
	pr.CloseWithError(errAbandoned) // a source still writing stops
	serr := <-done
	switch {
	case serr != nil && !errors.Is(serr, errAbandoned):
		return n, fmt.Errorf("write %s image into partition %d (%s): %w", p, ext.Number, ext.Label, serr)
	case errors.Is(derr, imagecodec.ErrTooLarge):
		return n, &TooLargeError{Part: p, Partition: ext}
	case derr != nil:
		return n, fmt.Errorf("write %s image into partition %d (%s): %w", p, ext.Number, ext.Label, derr)
	}
	w.written[p] = written{n: dst.n, sum: dst.sum.Sum(nil)}
	return dst.n, nil
}

// partWriter writes sequentially into one partition of the disk.
type partWriter struct {
	f         *os.File
	off, size int64
	n         int64 // bytes written
	flushed   int64 // bytes handed to writeback
	sum       hash.Hash
	device    *time.Duration // the Writer's
}

func (pw *partWriter) Write(b []byte) (int, error) {
	if pw.n+int64(len(b)) > pw.size {
		return 0, fmt.Errorf("write past the partition's end at byte %d: %w", pw.size, imagecodec.ErrTooLarge)
	}
	start := time.Now()
	defer func() { *pw.device += time.Since(start) }()
	k, err := pw.f.WriteAt(b, pw.off+pw.n)
	pw.sum.Write(b[:k])
	pw.n += int64(k)
	if err != nil {
		return k, fmt.Errorf("write at byte %d of the partition: %w", pw.n, err)
	}
	if pw.n-pw.flushed >= writeback {
		// Best effort: start writing the range; Sync waits for it.
		_ = unix.SyncFileRange(int(pw.f.Fd()), pw.off+pw.flushed, pw.n-pw.flushed, unix.SYNC_FILE_RANGE_WRITE)
		pw.flushed = pw.n
	}
	return k, nil
}

// Sync makes every write durable: fsync of the device flushes the page
// cache and the disk's write cache.
func (w *Writer) Sync() error {
	start := time.Now()
	defer func() { w.device += time.Since(start) }()
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", w.disk, err)
	}
	return nil
}

// Check reads every written part back from the device (after Sync; the
// written ranges are dropped from the page cache first, so the bytes come
// from the disk): the boot image must have the SHA-256 of what was
// written, and the root must match rootHash, its dm-verity root hash,
// through the hash tree in the hash partition (verity.Verify checks every
// tree block and every data block).
func (w *Writer) Check(ctx context.Context, rootHash []byte) error {
	for _, p := range Parts() {
		wr, ok := w.written[p]
		if !ok {
			return fmt.Errorf("check bank %s: %s image: %w", w.layout.Bank, p, ErrNotWritten)
		}
		ext := w.layout.Extent(p)
		if err := unix.Fadvise(int(w.f.Fd()), ext.Offset, wr.n, unix.FADV_DONTNEED); err != nil {
			return fmt.Errorf("drop %s partition from the page cache: %w", p, err)
		}
	}
	boot, ext := w.written[Boot], w.layout.Boot
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(w.f, ext.Offset, boot.n)); err != nil {
		return fmt.Errorf("read back boot image: %w", err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, boot.sum) {
		return &ReadBackError{Part: Boot, Partition: ext, Want: hex.EncodeToString(boot.sum), Got: hex.EncodeToString(got), Length: boot.n}
	}
	root, hashPart := w.written[Root], w.written[Hash]
	data := io.NewSectionReader(w.f, w.layout.Root.Offset, root.n)
	tree := io.NewSectionReader(w.f, w.layout.Hash.Offset, hashPart.n)
	if err := verity.Verify(ctx, data, root.n, tree, rootHash); err != nil {
		return fmt.Errorf("check root image in partition %d (%s) against dm-verity root hash %x: %w",
			w.layout.Root.Number, w.layout.Root.Label, rootHash, err)
	}
	return nil
}
