package verity

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestFormatMatchesVeritysetup(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		blocks   int
		dbs, hbs uint32
		levels   int
	}{
		{"1 block", 1, 4096, 4096, 0},
		{"127 blocks", 127, 4096, 4096, 1},
		{"128 blocks", 128, 4096, 4096, 1},
		{"129 blocks", 129, 4096, 4096, 2},
		{"16384+3 blocks", 16384 + 3, 4096, 4096, 3},
		{"4 levels, 1 KiB data, 512 B hash blocks", 16384 + 3, 1024, 512, 4},
		{"512 B data, 4 KiB hash blocks", 300, 512, 4096, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			dataPath, _ := writeData(t, dir, tt.blocks, int(tt.dbs), uint64(tt.blocks))
			p := Params{
				DataBlockSize: tt.dbs,
				HashBlockSize: tt.hbs,
				Salt:          DeriveSalt([]byte(tt.name)),
				UUID:          DeriveUUID([]byte(tt.name)),
			}
			want := veritysetupFormat(t, dataPath, filepath.Join(dir, "vs.hash"), p)
			tree := formatFile(t, dataPath, filepath.Join(dir, "our.hash"), p)

			if !bytes.Equal(tree.RootHash, want.root) {
				t.Errorf("Format root hash = %x, veritysetup %x", tree.RootHash, want.root)
			}
			if tree.HashBlocks != want.hashBlocks {
				t.Errorf("Format HashBlocks = %d, veritysetup %d", tree.HashBlocks, want.hashBlocks)
			}
			vs, err := os.ReadFile(filepath.Join(dir, "vs.hash"))
			if err != nil {
				t.Fatal(err)
			}
			ours, err := os.ReadFile(filepath.Join(dir, "our.hash"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ours, vs) {
				t.Errorf("hash file differs from veritysetup's: %s", firstDiff(ours, vs))
			}
			if tree.HashSize != int64(len(vs)) {
				t.Errorf("Tree.HashSize = %d, veritysetup wrote %d bytes", tree.HashSize, len(vs))
			}
			size, err := HashSize(int64(tt.blocks)*int64(tt.dbs), p)
			if err != nil || size != int64(len(vs)) {
				t.Errorf("HashSize(%d) = %d, %v, want %d", tt.blocks*int(tt.dbs), size, err, len(vs))
			}
			g, err := newGeometry(tt.dbs, tt.hbs, uint64(tt.blocks))
			if err != nil || g.levels() != tt.levels {
				t.Errorf("levels = %d, %v, want %d (the case no longer covers what its name says)", g.levels(), err, tt.levels)
			}
		})
	}
}

// TestFormatSegments checks trees whose level 0 spans several parallel
// segments against veritysetup, including a partial last segment.
func TestFormatSegments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// 1 KiB data blocks, 512 B hash blocks: a segment covers 256 leaves of
	// 16 KiB each, so 70000 blocks make 18 segments, the last partial.
	const blocks = 70000
	dataPath, _ := writeData(t, dir, blocks, 1024, 7)
	p := Params{DataBlockSize: 1024, HashBlockSize: 512, Salt: []byte{1, 2, 3}, UUID: DeriveUUID([]byte("seg"))}
	g, _ := newGeometry(1024, 512, blocks)
	if nseg := (g.levelBlocks[0] + g.segmentLeaves() - 1) / g.segmentLeaves(); nseg < 3 {
		t.Fatalf("test covers %d segments, want several", nseg)
	}
	want := veritysetupFormat(t, dataPath, filepath.Join(dir, "vs.hash"), p)
	tree := formatFile(t, dataPath, filepath.Join(dir, "our.hash"), p)
	if !bytes.Equal(tree.RootHash, want.root) {
		t.Errorf("Format root hash = %x, veritysetup %x", tree.RootHash, want.root)
	}
	vs, _ := os.ReadFile(filepath.Join(dir, "vs.hash"))
	ours, _ := os.ReadFile(filepath.Join(dir, "our.hash"))
	if !bytes.Equal(ours, vs) {
		t.Errorf("hash file differs from veritysetup's: %s", firstDiff(ours, vs))
	}
}

// TestFormatClearsBlockZero checks that stale bytes after the superblock
// are zeroed, so a reused hash partition gives the same bytes as a new one.
func TestFormatClearsBlockZero(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte{0xab}, 3*4096)
	hash := &memWriter{b: bytes.Repeat([]byte{0xff}, 4*4096)}
	p := Params{Salt: []byte{9}, UUID: DeriveUUID([]byte("z"))}
	if _, err := Format(context.Background(), bytes.NewReader(data), int64(len(data)), hash, p); err != nil {
		t.Fatal(err)
	}
	if got := hash.b[SuperblockSize:4096]; !bytes.Equal(got, make([]byte, len(got))) {
		t.Errorf("bytes %d-4095 of the hash device are not zero after Format", SuperblockSize)
	}
}

func TestFormatErrors(t *testing.T) {
	t.Parallel()
	good := Params{Salt: []byte{1}, UUID: DeriveUUID([]byte("x"))}
	data := make([]byte, 8*4096)
	for _, tt := range []struct {
		name   string
		size   int64
		p      Params
		is     error
		substr []string
	}{
		{"every bad param at once", 4097, Params{DataBlockSize: 1000, HashBlockSize: 1 << 20, Salt: nil},
			ErrInvalidParams, []string{"DataBlockSize: 1000", "HashBlockSize: 1048576", "Salt: empty", "UUID: all zeros", "data size 4097 is not a multiple"}},
		{"long salt", 4096, Params{Salt: make([]byte, 257), UUID: good.UUID}, ErrInvalidParams, []string{"Salt: 257 bytes"}},
		{"zero size", 0, good, ErrInvalidParams, []string{"data size 0"}},
		{"unaligned size", 4097, good, ErrInvalidParams, []string{"not a multiple of the data block size 4096"}},
		{"data shorter than size", 16 * 4096, good, io.ErrUnexpectedEOF, []string{"read data blocks 0-15"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Format(context.Background(), bytes.NewReader(data), tt.size, &memWriter{}, tt.p)
			if !errors.Is(err, tt.is) {
				t.Fatalf("Format() = %v, want %v", err, tt.is)
			}
			for _, s := range tt.substr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Format() = %q, want it to contain %q", err, s)
				}
			}
		})
	}
}

func TestFormatCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := make([]byte, 1024*4096)
	_, err := Format(ctx, bytes.NewReader(data), int64(len(data)), &memWriter{}, Params{Salt: []byte{1}, UUID: DeriveUUID()})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Format(canceled) = %v, want context.Canceled", err)
	}
}

func TestFormatWriteError(t *testing.T) {
	t.Parallel()
	data := make([]byte, 300*4096)
	_, err := Format(context.Background(), bytes.NewReader(data), int64(len(data)), failWriter{}, Params{Salt: []byte{1}, UUID: DeriveUUID()})
	if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "write hash blocks") {
		t.Errorf("Format(failing writer) = %v, want errDiskFull with context", err)
	}
}

func TestHashSizeErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		size int64
		p    Params
	}{
		{0, Params{}},
		{4095, Params{}},
		{4096, Params{HashBlockSize: 100}},
	} {
		if n, err := HashSize(tt.size, tt.p); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("HashSize(%d, %+v) = %d, %v, want ErrInvalidParams", tt.size, tt.p, n, err)
		}
	}
	// 920 MiB root, the upstream 2 GiB layout: must fit a 10 MiB partition.
	n, err := HashSize(920<<20, Params{})
	if err != nil || n != (1+1840+15+1)*4096 {
		t.Errorf("HashSize(920 MiB) = %d, %v, want %d", n, err, (1+1840+15+1)*4096)
	}
}

func TestTable(t *testing.T) {
	t.Parallel()
	root := bytes.Repeat([]byte{0xe9}, 32)
	tree := &Tree{
		RootHash:   root,
		Salt:       []byte{0xb7, 0xc8},
		DataBlocks: 16384,
		Params:     Params{DataBlockSize: 4096, HashBlockSize: 4096},
	}
	const r = "e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9"
	for _, tt := range []struct {
		opts []string
		want string
	}{
		{nil, "0 131072 verity 1 /dev/vda3 /dev/vda4 4096 4096 16384 1 sha256 " + r + " b7c8"},
		{[]string{"restart_on_corruption", "ignore_zero_blocks"},
			"0 131072 verity 1 /dev/vda3 /dev/vda4 4096 4096 16384 1 sha256 " + r + " b7c8 2 restart_on_corruption ignore_zero_blocks"},
	} {
		if got := tree.Table("/dev/vda3", "/dev/vda4", tt.opts...); got != tt.want {
			t.Errorf("Table(%q) =\n%s\nwant\n%s", tt.opts, got, tt.want)
		}
	}
	tree.Salt = nil
	if got := tree.Table("a", "b"); !strings.HasSuffix(got, r+" -") {
		t.Errorf("Table() with no salt = %q, want salt \"-\"", got)
	}
}

// memWriter is an in-memory io.WriterAt for tests, safe for the parallel
// writes of Format.
type memWriter struct {
	mu sync.Mutex
	b  []byte
}

func (m *memWriter) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

var errDiskFull = errors.New("disk full")

type failWriter struct{}

func (failWriter) WriteAt([]byte, int64) (int, error) { return 0, errDiskFull }
