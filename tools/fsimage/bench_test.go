package fsimage

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkExt4Tree builds an ext4 image of the tree named by
// FSIMAGE_BENCH_TREE (default /usr/lib/python3.11), including the debugfs
// pass that pins owners and times.
func BenchmarkExt4Tree(b *testing.B) {
	tree := os.Getenv("FSIMAGE_BENCH_TREE")
	if tree == "" {
		tree = "/usr/lib/python3.11"
	}
	if _, err := os.Stat(tree); err != nil {
		b.Fatalf("benchmark tree: %v (set FSIMAGE_BENCH_TREE)", err)
	}
	out := filepath.Join(b.TempDir(), "root.ext4")
	opts := Ext4Options{UUID: testUUID, Epoch: testEpoch, ReadOnly: true}
	for b.Loop() {
		if err := Ext4(context.Background(), tree, out, 512<<20, opts); err != nil {
			b.Fatal(err)
		}
	}
}
