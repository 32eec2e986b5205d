package verity

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestRootHash: the root hash read from a hash device is veritysetup's,
// for one, two and three tree levels and both block size pairs.
func TestRootHash(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		blocks, bs, hs int
	}{
		{"one level", 100, 4096, 4096},
		{"two levels", 300, 4096, 4096},
		{"three levels", 70000, 1024, 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			dataPath, _ := writeData(t, dir, tc.blocks, tc.bs, 3)
			p := Params{DataBlockSize: uint32(tc.bs), HashBlockSize: uint32(tc.hs), Salt: []byte("salt"), UUID: DeriveUUID([]byte("rh"))}
			want := veritysetupFormat(t, dataPath, filepath.Join(dir, "vs.hash"), p)
			hash, err := os.ReadFile(filepath.Join(dir, "vs.hash"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := RootHash(context.Background(), bytes.NewReader(hash))
			if err != nil || !bytes.Equal(got, want.root) {
				t.Errorf("RootHash = %x, %v; veritysetup says %x", got, err, want.root)
			}
		})
	}
	// One data block: no tree to read the root hash from.
	var one memWriter
	if _, err := Format(context.Background(), bytes.NewReader(make([]byte, 4096)), 4096, &one, Params{Salt: []byte{1}, UUID: DeriveUUID([]byte("1"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := RootHash(context.Background(), bytes.NewReader(one.b)); !errors.Is(err, ErrInvalidParams) {
		t.Errorf("RootHash of a one-block tree = %v, want ErrInvalidParams", err)
	}
	if _, err := RootHash(context.Background(), bytes.NewReader(make([]byte, 8192))); !errors.Is(err, ErrBadSuperblock) {
		t.Errorf("RootHash without a superblock = %v, want ErrBadSuperblock", err)
	}
}
