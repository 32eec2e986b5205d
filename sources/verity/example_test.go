package verity_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/petrel-os/petrel/sources/verity"
)

// The image builder formats the root image into the hash partition image
// and puts the table line on the kernel command line.
func ExampleFormat() {
	ctx := context.Background()
	root := bytes.Repeat([]byte("petrel root file system block..."), 4*4096/32) // 4 blocks

	dir, err := os.MkdirTemp("", "verity-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	hash, err := os.Create(filepath.Join(dir, "hash.img"))
	if err != nil {
		log.Fatal(err)
	}
	defer hash.Close()

	p := verity.Params{
		Salt: verity.DeriveSalt([]byte("metal-dev"), []byte("1.0.0")),
		UUID: verity.DeriveUUID([]byte("metal-dev"), []byte("1.0.0")),
	}
	tree, err := verity.Format(ctx, bytes.NewReader(root), int64(len(root)), hash, p)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tree.DataBlocks, tree.HashBlocks, tree.HashSize)
	fmt.Println(tree.Table("/dev/vda3", "/dev/vda4", "restart_on_corruption", "ignore_zero_blocks"))

	// The updater checks a written partition pair before switching to it.
	if err := verity.Verify(ctx, bytes.NewReader(root), int64(len(root)), hash, tree.RootHash); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 4 1 8192
	// 0 32 verity 1 /dev/vda3 /dev/vda4 4096 4096 4 1 sha256 f7ca686cb492d5d0f3d794aec1d73362df002f6c2d26ec07292386d341d373ef 0e02003b6d5203da940b7717f7bf4f020d22c6dc58744b139186a2eb31c58e47 2 restart_on_corruption ignore_zero_blocks
}
