package vmdk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zlib"
	"golang.org/x/sync/errgroup"

	"github.com/petrel-os/petrel/sources/outfile"
)

// ErrInvalidInput marks a bad argument: an unaligned size, a bad option.
var ErrInvalidInput = errors.New("invalid input")

const (
	descriptorSectors = 20
	overheadSectors   = 128 // the first grain starts at 64 KiB
	batchGrains       = 16  // grains per compression job (1 MiB)
	maxExtentName     = 255
)

// Options tune Convert. The zero value is valid.
type Options struct {
	// CID is the content ID written to the descriptor. Zero derives it from
	// the raw content (a CRC-32C pass over the image before conversion);
	// pass a value (e.g. from the build ID) to save that pass.
	CID uint32
	// ExtentName is the file name in the descriptor's extent line, normally
	// the base name of the .vmdk. Default "disk.vmdk".
	ExtentName string
	// AdapterType is ddb.adapterType: "lsilogic" (default), "buslogic",
	// "ide" or "legacyESX". It only matters for standalone use; an OVF
	// names the controller itself. The format has no NVMe type: a disk on
	// an NVMe controller says "lsilogic", as VMware's own converter writes
	// (see ova.AdapterType, which checks the pairing).
	AdapterType string
	// Level is the deflate level, 1 (fastest) to 9 (smallest). Zero means 6,
	// the zlib default that qemu-img uses.
	Level int
	// Workers is the number of compressing goroutines; zero means
	// GOMAXPROCS. The output does not depend on it.
	Workers int
}

func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.ExtentName == "" {
		o.ExtentName = "disk.vmdk"
	}
	if len(o.ExtentName) > maxExtentName || strings.ContainsAny(o.ExtentName, "\"\n\r\x00") {
		errs = append(errs, fmt.Errorf("ExtentName %q: want at most %d bytes without quotes or line breaks", o.ExtentName, maxExtentName))
	}
	switch o.AdapterType {
	case "":
		o.AdapterType = "lsilogic"
	case "lsilogic", "buslogic", "ide", "legacyESX":
	default:
		errs = append(errs, fmt.Errorf("AdapterType %q: want lsilogic, buslogic, ide or legacyESX", o.AdapterType))
	}
	switch {
	case o.Level == 0:
		o.Level = 6
	case o.Level < 1 || o.Level > 9:
		errs = append(errs, fmt.Errorf("Level %d: want 1..9", o.Level))
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("%w: %w", ErrInvalidInput, errors.Join(errs...))
	}
	return o, nil
}

// ConvertFile converts the raw image at rawPath into a streamOptimized VMDK
// at outPath, writing a temporary file in the same directory, syncing it and
// renaming it into place. An empty opts.ExtentName becomes the base name of
// outPath.
func ConvertFile(ctx context.Context, rawPath, outPath string, opts Options) (err error) {
	in, err := os.Open(rawPath)
	if err != nil {
		return fmt.Errorf("open raw image: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("stat raw image %q: %w", rawPath, err)
	}
	if opts.ExtentName == "" {
		opts.ExtentName = filepath.Base(outPath)
	}
	tmp, err := outfile.Create(outPath)
	if err != nil {
		return err
	}
	defer tmp.Discard()
	if err := Convert(ctx, in, st.Size(), tmp, opts); err != nil {
		return fmt.Errorf("convert %q to VMDK: %w", rawPath, err)
	}
	if err := tmp.Commit(); err != nil {
		return fmt.Errorf("write VMDK: %w", err)
	}
	return nil
}

// Convert reads size bytes of a raw disk image from raw and writes it to out
// as a streamOptimized VMDK. size must be a positive multiple of 512. All-zero
// 64 KiB grains are left out; the others are deflate-compressed on
// opts.Workers goroutines. raw must allow concurrent ReadAt calls (as
// *os.File does). The output bytes depend only on the content and opts.
func Convert(ctx context.Context, raw io.ReaderAt, size int64, out io.Writer, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if size <= 0 || size%SectorSize != 0 {
		return fmt.Errorf("%w: image size %d is not a positive multiple of %d", ErrInvalidInput, size, SectorSize)
	}
	if opts.CID == 0 {
		if opts.CID, err = contentID(ctx, raw, size); err != nil {
			return err
		}
	}
	w := &writer{
		out:       bufio.NewWriterSize(out, 1<<20),
		capacity:  uint64(size) / SectorSize,
		numGrains: (size + GrainBytes - 1) / GrainBytes,
	}
	w.gd = make([]uint32, (w.numGrains+GTEsPerGT-1)/GTEsPerGT)
	w.gt = make([]uint32, GTEsPerGT)
	if err := w.writeHead(opts); err != nil {
		return err
	}
	if err := w.writeGrains(ctx, raw, size, opts); err != nil {
		return err
	}
	if err := w.writeTail(); err != nil {
		return err
	}
	if err := w.out.Flush(); err != nil {
		return fmt.Errorf("write VMDK: %w", err)
	}
	return nil
}

// contentID derives a CID from a CRC-32C of the image. 0 and ffffffff are
// avoided because readers treat them specially.
func contentID(ctx context.Context, raw io.ReaderAt, size int64) (uint32, error) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	buf := make([]byte, 1<<20)
	var sum uint32
	for off := int64(0); off < size; off += int64(len(buf)) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n := min(int64(len(buf)), size-off)
		if err := readFull(raw, buf[:n], off); err != nil {
			return 0, err
		}
		sum = crc32.Update(sum, tab, buf[:n])
	}
	sum = crc32.Update(sum, tab, binary.LittleEndian.AppendUint64(nil, uint64(size)))
	if sum == 0 || sum == CIDNoParent {
		sum = 1
	}
	return sum, nil
}

func readFull(raw io.ReaderAt, b []byte, off int64) error {
	n, err := raw.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read raw image at offset %d: %w", off, err)
}

// writer emits the stream in order and keeps the grain tables.
type writer struct {
	out       *bufio.Writer
	sector    uint64 // next sector to write
	capacity  uint64
	numGrains int64
	gd        []uint32 // grain directory: sector of each grain table, 0 if absent
	gt        []uint32 // the grain table being filled
	gtIndex   int64    // which grain table gt is
	gtUsed    bool
	sectorBuf [SectorSize]byte
}

func (w *writer) header(gdOffset uint64) Header {
	return Header{
		Version:           3,
		Flags:             FlagNewlineDetect | FlagCompressed | FlagMarkers,
		Capacity:          w.capacity,
		GrainSize:         GrainSectors,
		DescriptorOffset:  1,
		DescriptorSize:    descriptorSectors,
		NumGTEsPerGT:      GTEsPerGT,
		GDOffset:          gdOffset,
		Overhead:          overheadSectors,
		CompressAlgorithm: CompressDeflate,
	}
}

func (w *writer) write(b []byte) error {
	if len(b)%SectorSize != 0 {
		return fmt.Errorf("internal error: write of %d bytes is not sector aligned", len(b))
	}
	if _, err := w.out.Write(b); err != nil {
		return fmt.Errorf("write VMDK at sector %d: %w", w.sector, err)
	}
	w.sector += uint64(len(b) / SectorSize)
	return nil
}

func (w *writer) writeHead(opts Options) error {
	head := make([]byte, overheadSectors*SectorSize)
	w.header(GDAtEnd).put(head)
	desc := Descriptor{
		CID:        opts.CID,
		ParentCID:  CIDNoParent,
		CreateType: "streamOptimized",
		Extents:    []Extent{{Access: "RW", Sectors: w.capacity, Type: "SPARSE", File: opts.ExtentName}},
		DDB:        ddb(w.capacity, opts.AdapterType),
	}
	text := desc.Marshal()
	if len(text) > descriptorSectors*SectorSize {
		return fmt.Errorf("%w: descriptor is %d bytes, room for %d", ErrInvalidInput, len(text), descriptorSectors*SectorSize)
	}
	copy(head[SectorSize:], text)
	return w.write(head)
}

// ddb returns the disk database: adapter and a BIOS geometry that VMware
// expects even though nothing modern uses it.
func ddb(capacity uint64, adapter string) []DDBEntry {
	heads := uint64(255)
	if adapter == "ide" {
		heads = 16
	}
	cylinders := min(max(capacity/(heads*63), 1), 65535)
	return []DDBEntry{
		{"ddb.adapterType", adapter},
		{"ddb.geometry.cylinders", strconv.FormatUint(cylinders, 10)},
		{"ddb.geometry.heads", strconv.FormatUint(heads, 10)},
		{"ddb.geometry.sectors", "63"},
		{"ddb.virtualHWVersion", "4"},
	}
}

// grain is one compressed grain ready to write: marker, data, padding.
type grain struct {
	index int64
	blob  []byte
}

type batch struct {
	index int64
	res   chan []grain
}

func (w *writer) writeGrains(ctx context.Context, raw io.ReaderAt, size int64, opts Options) error {
	numBatches := (w.numGrains + batchGrains - 1) / batchGrains
	g, ctx := errgroup.WithContext(ctx)
	jobs := make(chan batch)
	pending := make(chan batch, 4*opts.Workers) // batches in output order
	g.Go(func() error {
		defer close(jobs)
		defer close(pending)
		for i := range numBatches {
			b := batch{index: i, res: make(chan []grain, 1)}
			select {
			case pending <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case jobs <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for range opts.Workers {
		g.Go(func() error {
			c, err := newCompressor(opts.Level)
			if err != nil {
				return err
			}
			for b := range jobs {
				grains, err := c.batch(raw, size, b.index, w.numGrains)
				if err != nil {
					return err
				}
				b.res <- grains
			}
			return nil
		})
	}
	g.Go(func() error {
		for b := range pending {
			var grains []grain
			select {
			case grains = <-b.res:
			case <-ctx.Done():
				return ctx.Err()
			}
			for _, gr := range grains {
				if err := w.addGrain(gr); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return g.Wait()
}

// addGrain writes one grain, first flushing the grain table of earlier
// grains if gr starts a new one.
func (w *writer) addGrain(gr grain) error {
	if t := gr.index / GTEsPerGT; t != w.gtIndex {
		if err := w.flushGT(); err != nil {
			return err
		}
		w.gtIndex = t
	}
	if w.sector > uint64(^uint32(0)) {
		return fmt.Errorf("%w: VMDK grows beyond 2 TiB of compressed data", ErrInvalidInput)
	}
	w.gt[gr.index%GTEsPerGT] = uint32(w.sector)
	w.gtUsed = true
	return w.write(gr.blob)
}

func (w *writer) flushGT() error {
	if !w.gtUsed {
		return nil
	}
	const gtSectors = GTEsPerGT * 4 / SectorSize
	marker(w.sectorBuf[:], gtSectors, markerGT)
	if err := w.write(w.sectorBuf[:]); err != nil {
		return err
	}
	w.gd[w.gtIndex] = uint32(w.sector)
	buf := make([]byte, GTEsPerGT*4)
	for i, e := range w.gt {
		binary.LittleEndian.PutUint32(buf[i*4:], e)
	}
	clear(w.gt)
	w.gtUsed = false
	return w.write(buf)
}

func (w *writer) writeTail() error {
	if err := w.flushGT(); err != nil {
		return err
	}
	gdSectors := (len(w.gd)*4 + SectorSize - 1) / SectorSize
	marker(w.sectorBuf[:], uint64(gdSectors), markerGD)
	if err := w.write(w.sectorBuf[:]); err != nil {
		return err
	}
	gdOffset := w.sector
	buf := make([]byte, gdSectors*SectorSize)
	for i, e := range w.gd {
		binary.LittleEndian.PutUint32(buf[i*4:], e)
	}
	if err := w.write(buf); err != nil {
		return err
	}
	tail := make([]byte, 3*SectorSize)
	marker(tail, 1, markerFooter)
	w.header(gdOffset).put(tail[SectorSize:])
	marker(tail[2*SectorSize:], 0, markerEOS)
	return w.write(tail)
}

// compressor turns a batch of raw grains into grain records. Each worker
// owns one.
type compressor struct {
	zw   *zlib.Writer
	raw  []byte
	zero []byte
	buf  bytes.Buffer
}

func newCompressor(level int) (*compressor, error) {
	zw, err := zlib.NewWriterLevel(io.Discard, level)
	if err != nil {
		return nil, fmt.Errorf("create zlib writer: %w", err)
	}
	return &compressor{zw: zw, raw: make([]byte, batchGrains*GrainBytes), zero: make([]byte, GrainBytes)}, nil
}

func (c *compressor) batch(raw io.ReaderAt, size, index, numGrains int64) ([]grain, error) {
	first := index * batchGrains
	last := min(first+batchGrains, numGrains)
	off := first * GrainBytes
	n := min(int64(len(c.raw)), size-off)
	if err := readFull(raw, c.raw[:n], off); err != nil {
		return nil, err
	}
	clear(c.raw[n:]) // a partial last grain is padded with zeros
	var out []grain
	for gi := first; gi < last; gi++ {
		data := c.raw[(gi-first)*GrainBytes : (gi-first+1)*GrainBytes]
		if bytes.Equal(data, c.zero) {
			continue
		}
		blob, err := c.grain(gi, data)
		if err != nil {
			return nil, err
		}
		out = append(out, grain{index: gi, blob: blob})
	}
	return out, nil
}

// grain encodes the grain marker (LBA in sectors, compressed length), the
// zlib stream and the padding to a sector boundary.
func (c *compressor) grain(index int64, data []byte) ([]byte, error) {
	c.buf.Reset()
	var hdr [12]byte
	binary.LittleEndian.PutUint64(hdr[0:], uint64(index*GrainSectors))
	c.buf.Write(hdr[:])
	c.zw.Reset(&c.buf)
	if _, err := c.zw.Write(data); err != nil {
		return nil, fmt.Errorf("compress grain %d: %w", index, err)
	}
	if err := c.zw.Close(); err != nil {
		return nil, fmt.Errorf("compress grain %d: %w", index, err)
	}
	blob := c.buf.Bytes()
	binary.LittleEndian.PutUint32(blob[8:], uint32(len(blob)-12))
	padded := (len(blob) + SectorSize - 1) / SectorSize * SectorSize
	out := make([]byte, padded)
	copy(out, blob)
	return out, nil
}
