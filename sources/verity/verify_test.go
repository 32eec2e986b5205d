package verity

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
)

// TestVerifyCrossChecks runs our Verify on veritysetup's hash devices and
// veritysetup verify on ours, then corrupts data, tree, salt and root hash
// and expects both to fail at the same place.
func TestVerifyCrossChecks(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		blocks   int
		dbs, hbs uint32
	}{
		{"1 block", 1, 4096, 4096},
		{"128 blocks", 128, 4096, 4096},
		{"16384+3 blocks", 16384 + 3, 4096, 4096},
		{"4 levels", 5000, 1024, 512},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			dataPath, _ := writeData(t, dir, tt.blocks, int(tt.dbs), 42)
			p := Params{DataBlockSize: tt.dbs, HashBlockSize: tt.hbs, Salt: DeriveSalt([]byte(tt.name)), UUID: DeriveUUID([]byte(tt.name))}
			vsHash := filepath.Join(dir, "vs.hash")
			ourHash := filepath.Join(dir, "our.hash")
			want := veritysetupFormat(t, dataPath, vsHash, p)
			tree := formatFile(t, dataPath, ourHash, p)

			if ok, _, out := veritysetupVerify(t, dataPath, ourHash, tree.RootHash); !ok {
				t.Fatalf("veritysetup verify rejects our hash device:\n%s", out)
			}
			if err := verifyFiles(t, dataPath, vsHash, want.root); err != nil {
				t.Fatalf("Verify(veritysetup's hash device) = %v, want nil", err)
			}

			last := int64(tt.blocks) - 1
			for _, c := range []struct {
				name  string
				block int64 // data block to corrupt
				at    int64 // byte within the block
			}{
				{"first block, first byte", 0, 0},
				{"middle block", last / 2, 100},
				{"last block, last byte", last, int64(tt.dbs) - 1},
			} {
				bad := filepath.Join(dir, "bad.img")
				copyFile(t, dataPath, bad)
				flipByte(t, bad, c.block*int64(tt.dbs)+c.at)

				ok, pos, out := veritysetupVerify(t, bad, ourHash, tree.RootHash)
				if ok {
					t.Errorf("%s: veritysetup verify accepts corrupt data:\n%s", c.name, out)
				}
				err := verifyFiles(t, bad, vsHash, want.root)
				var ce *CorruptError
				if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: Verify(corrupt data) = %v, want *CorruptError", c.name, err)
				}
				if ce.Area != AreaData || int64(ce.Block) != c.block {
					t.Errorf("%s: Verify(corrupt data) = %v, want data block %d", c.name, err, c.block)
				}
				// veritysetup names the failing data offset except when the
				// only data block is checked against the root directly.
				if pos >= 0 && pos/int64(tt.dbs) != int64(ce.Block) {
					t.Errorf("%s: veritysetup fails at data offset %d (block %d), Verify at block %d", c.name, pos, pos/int64(tt.dbs), ce.Block)
				}
			}
		})
	}
}

func TestVerifyHashCorruption(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const blocks = 16384 + 3 // levels: 1 block at 1, 2 at 2-3, 129 at 4-132
	dataPath, _ := writeData(t, dir, blocks, 4096, 5)
	hashPath := filepath.Join(dir, "our.hash")
	p := Params{Salt: DeriveSalt([]byte("h")), UUID: DeriveUUID([]byte("h"))}
	tree := formatFile(t, dataPath, hashPath, p)
	root := tree.RootHash

	for _, tt := range []struct {
		name string
		off  int64 // byte of the hash device to flip; -1 for none
		root []byte
		want CorruptError
	}{
		{"top block", 1*4096 + 5, root, CorruptError{Area: AreaHash, Block: 1, Root: true}},
		{"top block padding", 1*4096 + 4095, root, CorruptError{Area: AreaHash, Block: 1, Root: true}},
		{"middle level", 3*4096 + 31, root, CorruptError{Area: AreaHash, Block: 3}},
		{"leaf block", 70*4096 + 64, root, CorruptError{Area: AreaHash, Block: 70}},
		{"last leaf padding", 132*4096 + 4000, root, CorruptError{Area: AreaHash, Block: 132}},
		{"salt in superblock", offSalt + 3, root, CorruptError{Area: AreaHash, Block: 1, Root: true}},
		{"wrong root hash", -1, bytes.Repeat([]byte{1}, 32), CorruptError{Area: AreaHash, Block: 1, Root: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bad := filepath.Join(t.TempDir(), "bad.hash")
			copyFile(t, hashPath, bad)
			if tt.off >= 0 {
				flipByte(t, bad, tt.off)
			}
			if ok, _, out := veritysetupVerify(t, dataPath, bad, tt.root); ok {
				t.Errorf("veritysetup verify accepts it:\n%s", out)
			}
			err := verifyFiles(t, dataPath, bad, tt.root)
			var ce *CorruptError
			if !errors.As(err, &ce) || *ce != tt.want {
				t.Errorf("Verify() = %v, want %v", err, &tt.want)
			}
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	data := make([]byte, 10*4096)
	hash := &memWriter{}
	p := Params{Salt: []byte{7}, UUID: DeriveUUID([]byte("e"))}
	tree, err := Format(context.Background(), bytes.NewReader(data), int64(len(data)), hash, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		extra  int          // bytes appended to the data device
		size   int64        // data size passed to Verify, if not the device size
		mutate func([]byte) // applied to a copy of the hash device
		root   []byte
		is     error
	}{
		{name: "ok", root: tree.RootHash},
		{name: "larger data device", extra: 4096, root: tree.RootHash},
		{name: "data device too small", size: 9 * 4096, root: tree.RootHash, is: ErrInvalidParams},
		{name: "short root hash", root: tree.RootHash[:20], is: ErrInvalidParams},
		{name: "bad magic", mutate: func(b []byte) { b[0] = 'V' }, root: tree.RootHash, is: ErrBadSuperblock},
		{name: "chromium os hash type", mutate: func(b []byte) { b[offHashType] = 0 }, root: tree.RootHash, is: errors.ErrUnsupported},
		{name: "sha512", mutate: func(b []byte) { copy(b[offAlgorithm:], "sha512\x00") }, root: tree.RootHash, is: errors.ErrUnsupported},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := append(bytes.Clone(data), make([]byte, tt.extra)...)
			size := int64(len(d))
			if tt.size != 0 {
				size = tt.size
			}
			h := bytes.Clone(hash.b)
			if tt.mutate != nil {
				tt.mutate(h)
			}
			err := Verify(context.Background(), bytes.NewReader(d), size, bytes.NewReader(h), tt.root)
			if !errors.Is(err, tt.is) {
				t.Errorf("Verify() = %v, want %v", err, tt.is)
			}
		})
	}
	t.Run("truncated hash device", func(t *testing.T) {
		t.Parallel()
		err := Verify(context.Background(), bytes.NewReader(data), int64(len(data)), bytes.NewReader(hash.b[:4096]), tree.RootHash)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Verify(truncated) = %v, want io.ErrUnexpectedEOF", err)
		}
	})
}
