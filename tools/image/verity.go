package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/verity"
)

// buildVerity computes the root's dm-verity hash tree into the hash image.
// Salt and UUID derive from the build's inputs, so a rebuild reproduces the
// same root hash.
func (a *assembly) buildVerity(ctx context.Context, p *partitionImages) error {
	data, err := os.Open(p.root)
	if err != nil {
		return fmt.Errorf("open root image: %w", err)
	}
	defer data.Close()
	st, err := data.Stat()
	if err != nil {
		return fmt.Errorf("stat root image: %w", err)
	}
	params := verity.Params{
		Salt: verity.DeriveSalt(a.seed, []byte("verity/root")),
		UUID: verity.DeriveUUID(a.seed, []byte("verity/root")),
	}
	need, err := verity.HashSize(st.Size(), params)
	if err != nil {
		return fmt.Errorf("size hash tree: %w", err)
	}
	part, _ := a.layout.Partition(disklayout.KeyHashA)
	if need > part.SizeBytes() {
		return fmt.Errorf("hash tree needs %d MiB but HASH-A is %d MiB", (need+disklayout.MiB-1)/disklayout.MiB, part.SizeMiB)
	}
	p.hash = filepath.Join(a.work, "hash.img")
	hf, err := os.Create(p.hash)
	if err != nil {
		return fmt.Errorf("create hash image: %w", err)
	}
	tree, err := verity.Format(ctx, data, st.Size(), hf, params)
	if cerr := hf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("compute dm-verity hash tree: %w", err)
	}
	p.rootHash = hexString(tree.RootHash)
	p.salt = hexString(tree.Salt)
	p.dataBlocks = tree.DataBlocks
	a.result.RootHash = p.rootHash
	return nil
}
