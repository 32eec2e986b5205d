package verity

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// goldenSuperblock is the superblock of testdata/superblock.golden.
func goldenSuperblock() *Superblock {
	return &Superblock{
		Version:       1,
		HashType:      1,
		UUID:          DeriveUUID([]byte("golden")),
		Algorithm:     "sha256",
		DataBlockSize: 4096,
		HashBlockSize: 4096,
		DataBlocks:    16384,
		Salt:          DeriveSalt([]byte("golden")),
	}
}

func TestSuperblockGolden(t *testing.T) {
	t.Parallel()
	got, err := goldenSuperblock().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "superblock.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("MarshalBinary() differs from %s: %s", path, firstDiff(got, want))
	}
	parsed, err := ParseSuperblock(want)
	if err != nil {
		t.Fatalf("ParseSuperblock(%s) = %v", path, err)
	}
	if !reflect.DeepEqual(parsed, goldenSuperblock()) {
		t.Errorf("ParseSuperblock(%s) = %+v, want %+v", path, parsed, goldenSuperblock())
	}
}

// TestSuperblockFromVeritysetup parses the superblock veritysetup writes.
func TestSuperblockFromVeritysetup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dataPath, _ := writeData(t, dir, 3, 4096, 1)
	p := Params{Salt: []byte{0xde, 0xad, 0xbe, 0xef}, UUID: DeriveUUID([]byte("vs"))}
	veritysetupFormat(t, dataPath, filepath.Join(dir, "vs.hash"), p)
	b, err := os.ReadFile(filepath.Join(dir, "vs.hash"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseSuperblock(b)
	if err != nil {
		t.Fatalf("ParseSuperblock(veritysetup's) = %v", err)
	}
	want := &Superblock{Version: 1, HashType: 1, UUID: p.UUID, Algorithm: "sha256",
		DataBlockSize: 4096, HashBlockSize: 4096, DataBlocks: 3, Salt: p.Salt}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseSuperblock(veritysetup's) = %+v, want %+v", got, want)
	}
}

func TestParseSuperblockErrors(t *testing.T) {
	t.Parallel()
	good, err := goldenSuperblock().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	put := func(b []byte, off int, v ...byte) { copy(b[off:], v) }
	for _, tt := range []struct {
		name   string
		mutate func(b []byte) []byte
		fields []string // every field the error must name
	}{
		{"short", func(b []byte) []byte { return b[:511] }, []string{"size"}},
		{"magic", func(b []byte) []byte { put(b, 0, 'V'); return b }, []string{"magic"}},
		{"version", func(b []byte) []byte { put(b, offVersion, 2); return b }, []string{"version"}},
		{"hash type", func(b []byte) []byte { put(b, offHashType, 7); return b }, []string{"hash_type"}},
		{"algorithm unterminated", func(b []byte) []byte {
			copy(b[offAlgorithm:offAlgorithm+32], bytes.Repeat([]byte{'a'}, 32))
			return b
		}, []string{"algorithm"}},
		{"algorithm empty", func(b []byte) []byte { clear(b[offAlgorithm : offAlgorithm+32]); return b }, []string{"algorithm"}},
		{"algorithm uppercase", func(b []byte) []byte { put(b, offAlgorithm, 'S'); return b }, []string{"algorithm"}},
		{"data block size", func(b []byte) []byte { put(b, offDataBlockSize, 0, 0x30, 0, 0); return b }, []string{"data_block_size"}},
		{"hash block size", func(b []byte) []byte { put(b, offHashBlockSize, 0, 1, 0, 0); return b }, []string{"hash_block_size"}},
		{"data blocks", func(b []byte) []byte { clear(b[offDataBlocks : offDataBlocks+8]); return b }, []string{"data_blocks"}},
		{"salt size", func(b []byte) []byte { put(b, offSaltSize, 1, 1); return b }, []string{"salt_size"}},
		{"every field at once", func(b []byte) []byte {
			put(b, offVersion, 9)
			put(b, offHashType, 9)
			put(b, offAlgorithm, '!')
			put(b, offDataBlockSize, 1)
			put(b, offHashBlockSize, 1)
			put(b, offSaltSize, 0xff, 0xff)
			return b
		}, []string{"version", "hash_type", "algorithm", "data_block_size", "hash_block_size", "salt_size"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := ParseSuperblock(tt.mutate(bytes.Clone(good)))
			if !errors.Is(err, ErrBadSuperblock) {
				t.Fatalf("ParseSuperblock() = %+v, %v, want ErrBadSuperblock", s, err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("ParseSuperblock() = %v, want a *FieldError", err)
			}
			for _, f := range tt.fields {
				if !strings.Contains(err.Error(), "verity superblock: "+f+": ") {
					t.Errorf("ParseSuperblock() = %q, want it to name field %q", err, f)
				}
			}
		})
	}
}

func TestMarshalBinaryRejectsBadFields(t *testing.T) {
	t.Parallel()
	s := goldenSuperblock()
	s.Salt = make([]byte, 300)
	s.DataBlockSize = 3
	_, err := s.MarshalBinary()
	if !errors.Is(err, ErrBadSuperblock) || !strings.Contains(err.Error(), "salt_size") || !strings.Contains(err.Error(), "data_block_size") {
		t.Errorf("MarshalBinary() = %v, want errors naming salt_size and data_block_size", err)
	}
}

func FuzzParseSuperblock(f *testing.F) {
	good, err := goldenSuperblock().MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:100])
	f.Add(make([]byte, SuperblockSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSuperblock(b)
		if err != nil {
			if s != nil {
				t.Fatalf("ParseSuperblock() = %+v and %v, want nil with an error", s, err)
			}
			if !errors.Is(err, ErrBadSuperblock) {
				t.Fatalf("ParseSuperblock() = %v, want ErrBadSuperblock", err)
			}
			return
		}
		out, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(parsed %+v) = %v", s, err)
		}
		again, err := ParseSuperblock(out)
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("ParseSuperblock(MarshalBinary(s)) = %+v, %v, want %+v", again, err, s)
		}
	})
}
