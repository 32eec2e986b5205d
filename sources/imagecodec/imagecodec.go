package imagecodec

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/zstd"
)

// Ext is the file-name suffix of a compressed image.
const Ext = ".zst"

// MaxWindow bounds the decoder's window memory. The encoder levels used here
// need at most 8 MiB; anything larger is refused as a possible memory bomb.
const MaxWindow = 32 << 20

var (
	// ErrFormat marks input that is not a zstd stream.
	ErrFormat = errors.New("not a zstd-compressed image")
	// ErrTooLarge marks a stream that decompresses to more than the limit.
	ErrTooLarge = errors.New("decompressed image exceeds the size limit")
)

// Level trades compression time for size.
type Level int

// Levels. The zero value is LevelDefault.
const (
	// LevelDefault is zstd's default (about `zstd -3`): the build default.
	LevelDefault Level = iota
	// LevelFastest (about `zstd -1`) suits quick development builds.
	LevelFastest
	// LevelBetter (about `zstd -7`) is about 6 % smaller and half as fast.
	LevelBetter
	// LevelBest (about `zstd -11`) is slow; for release builds only.
	LevelBest
)

func (l Level) encoderLevel() (zstd.EncoderLevel, error) {
	switch l {
	case LevelDefault:
		return zstd.SpeedDefault, nil
	case LevelFastest:
		return zstd.SpeedFastest, nil
	case LevelBetter:
		return zstd.SpeedBetterCompression, nil
	case LevelBest:
		return zstd.SpeedBestCompression, nil
	}
	return 0, fmt.Errorf("unknown compression level %d", int(l))
}

// ParseLevel maps a level name ("default", "fastest", "better", "best") to
// a Level.
func ParseLevel(s string) (Level, error) {
	switch s {
	case "", "default":
		return LevelDefault, nil
	case "fastest":
		return LevelFastest, nil
	case "better":
		return LevelBetter, nil
	case "best":
		return LevelBest, nil
	}
	return 0, fmt.Errorf("compression level %q: want default, fastest, better or best", s)
}

// String returns the level name ParseLevel accepts.
func (l Level) String() string {
	switch l {
	case LevelDefault:
		return "default"
	case LevelFastest:
		return "fastest"
	case LevelBetter:
		return "better"
	case LevelBest:
		return "best"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// Compress reads src to its end and writes it to dst as one zstd frame
// stream with content checksums. It uses up to GOMAXPROCS goroutines; the
// output does not depend on their number.
func Compress(ctx context.Context, dst io.Writer, src io.Reader, level Level) error {
	el, err := level.encoderLevel()
	if err != nil {
		return err
	}
	enc, err := zstd.NewWriter(dst,
		zstd.WithEncoderLevel(el),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithEncoderCRC(true),
	)
	if err != nil {
		return fmt.Errorf("create zstd encoder: %w", err)
	}
	if _, err := io.Copy(enc, ctxReader{ctx, src}); err != nil {
		enc.Close()
		return fmt.Errorf("compress image: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("finish zstd stream: %w", err)
	}
	return nil
}

// Decompress reads a zstd stream from src, checks its checksums and writes
// the content to dst. It stops with ErrTooLarge once more than limit bytes
// come out (limit <= 0: no limit), so a host can bound the write to the
// size of the target partition. It returns the number of bytes written.
func Decompress(ctx context.Context, dst io.Writer, src io.Reader, limit int64) (int64, error) {
	br := bufio.NewReaderSize(src, 1<<16)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read compressed image: %w", err)
	}
	if !bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		return 0, fmt.Errorf("%w: missing zstd magic number", ErrFormat)
	}
	dec, err := zstd.NewReader(ctxReader{ctx, br},
		zstd.WithDecoderMaxWindow(MaxWindow),
		zstd.WithDecoderConcurrency(min(runtime.GOMAXPROCS(0), 4)),
	)
	if err != nil {
		return 0, fmt.Errorf("create zstd decoder: %w", err)
	}
	defer dec.Close()
	var r io.Reader = dec
	if limit > 0 {
		r = io.LimitReader(dec, limit)
	}
	n, err := io.Copy(dst, r)
	if err != nil {
		if ctx.Err() != nil {
			return n, fmt.Errorf("decompress image: %w", ctx.Err())
		}
		return n, fmt.Errorf("decompress image: %w", err)
	}
	if limit > 0 && n == limit {
		// Anything left, even one byte, means the image does not fit.
		var one [1]byte
		if m, err := io.ReadFull(dec, one[:]); m > 0 {
			return n, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
		} else if !errors.Is(err, io.EOF) {
			return n, fmt.Errorf("decompress image: %w", err)
		}
	}
	return n, nil
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
