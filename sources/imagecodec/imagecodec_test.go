package imagecodec

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

// sample is 6 MiB of mixed data: text, random bytes and zeros, so that the
// encoder splits it into several blocks.
func sample() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for b.Len() < 6<<20 {
		switch rng.IntN(3) {
		case 0:
			b.Write(bytes.Repeat([]byte("petrel update image "), 1+rng.IntN(5000)))
		case 1:
			r := make([]byte, rng.IntN(100000))
			for i := range r {
				r[i] = byte(rng.Uint32())
			}
			b.Write(r)
		default:
			b.Write(make([]byte, rng.IntN(300000)))
		}
	}
	return b.Bytes()
}

func compress(t testing.TB, data []byte, l Level) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := Compress(context.Background(), &out, bytes.NewReader(data), l); err != nil {
		t.Fatalf("Compress(level %v): %v", l, err)
	}
	return out.Bytes()
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	data := sample()
	for _, l := range []Level{LevelDefault, LevelFastest, LevelBetter, LevelBest} {
		t.Run(l.String(), func(t *testing.T) {
			t.Parallel()
			c := compress(t, data, l)
			if len(c) >= len(data) {
				t.Errorf("level %v: %d bytes compressed to %d", l, len(data), len(c))
			}
			var back bytes.Buffer
			n, err := Decompress(context.Background(), &back, bytes.NewReader(c), int64(len(data)))
			if err != nil || n != int64(len(data)) || !bytes.Equal(back.Bytes(), data) {
				t.Fatalf("Decompress = %d, %v; equal %v", n, err, bytes.Equal(back.Bytes(), data))
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		t.Parallel()
		c := compress(t, nil, LevelDefault)
		n, err := Decompress(context.Background(), &bytes.Buffer{}, bytes.NewReader(c), 0)
		if err != nil || n != 0 {
			t.Errorf("Decompress(empty) = %d, %v", n, err)
		}
	})
}

// TestDeterministic must not run in parallel: it changes GOMAXPROCS.
func TestDeterministic(t *testing.T) {
	data := sample()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	var want []byte
	for _, procs := range []int{1, 2, 5} {
		runtime.GOMAXPROCS(procs)
		for _, l := range []Level{LevelDefault, LevelBetter} {
			got := compress(t, data, l)
			if l == LevelDefault {
				if want == nil {
					want = got
				} else if !bytes.Equal(got, want) {
					t.Errorf("GOMAXPROCS=%d: output differs from GOMAXPROCS=1", procs)
				}
			}
		}
	}
}

func TestDecompressErrors(t *testing.T) {
	t.Parallel()
	data := sample()
	c := compress(t, data, LevelDefault)
	corrupt := bytes.Clone(c)
	corrupt[len(corrupt)/2] ^= 0xff
	for _, tt := range []struct {
		name  string
		in    []byte
		limit int64
		want  error
	}{
		{"empty input", nil, 0, ErrFormat},
		{"lz4 frame", []byte{0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7}, 0, ErrFormat},
		{"over limit", c, int64(len(data)) - 1, ErrTooLarge},
		{"truncated", c[:len(c)/2], 0, nil},
		{"corrupt", corrupt, 0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decompress(context.Background(), &bytes.Buffer{}, bytes.NewReader(tt.in), tt.limit)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Decompress(%s) = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Decompress(ctx, &bytes.Buffer{}, bytes.NewReader(c), 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Decompress(canceled) = %v, want context.Canceled", err)
	}
	if err := Compress(ctx, &bytes.Buffer{}, bytes.NewReader(data), LevelDefault); !errors.Is(err, context.Canceled) {
		t.Errorf("Compress(canceled) = %v, want context.Canceled", err)
	}
}

// TestZstdCLI checks interoperability with the reference zstd tool both ways.
func TestZstdCLI(t *testing.T) {
	testkit.Tool(t, "zstd")
	t.Parallel()
	dir := t.TempDir()
	data := sample()
	ours := filepath.Join(dir, "ours.zst")
	if err := os.WriteFile(ours, compress(t, data, LevelDefault), 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, "zstd", "-q", "-d", "-f", ours, "-o", filepath.Join(dir, "ours"))
	if got, _ := os.ReadFile(filepath.Join(dir, "ours")); !bytes.Equal(got, data) {
		t.Error("zstd -d of our stream differs from the input")
	}
	raw := filepath.Join(dir, "raw")
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, "zstd", "-q", "-19", "-f", raw, "-o", raw+".zst")
	f, err := os.Open(raw + ".zst")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var back bytes.Buffer
	if _, err := Decompress(context.Background(), &back, f, 0); err != nil || !bytes.Equal(back.Bytes(), data) {
		t.Errorf("Decompress of zstd -19 output: %v, equal %v", err, bytes.Equal(back.Bytes(), data))
	}
}

func TestParseLevel(t *testing.T) {
	t.Parallel()
	for _, l := range []Level{LevelDefault, LevelFastest, LevelBetter, LevelBest} {
		if got, err := ParseLevel(l.String()); err != nil || got != l {
			t.Errorf("ParseLevel(%q) = %v, %v, want %v", l.String(), got, err, l)
		}
	}
	if _, err := ParseLevel("max"); err == nil {
		t.Error(`ParseLevel("max") succeeded`)
	}
	if err := Compress(context.Background(), &bytes.Buffer{}, bytes.NewReader(nil), Level(9)); err == nil {
		t.Error("Compress with Level(9) succeeded")
	}
}

func FuzzDecompress(f *testing.F) {
	f.Add(compress(f, []byte("hello hello hello hello"), LevelDefault))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		n, err := Decompress(context.Background(), &out, bytes.NewReader(in), 1<<20)
		if int64(out.Len()) != n || n > 1<<20 {
			t.Fatalf("Decompress wrote %d bytes, reported %d (limit 1 MiB), err %v", out.Len(), n, err)
		}
	})
}
