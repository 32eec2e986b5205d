package compress

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/imagecodec"
	"github.com/petrel-os/petrel/sources/testkit"
)

// TestCompressFile compresses a real ext4 image twice and checks that the
// bytes are the same, that the name ends in .zst and that zstd -d and
// imagecodec.Decompress give the image back.
func TestCompressFile(t *testing.T) {
	testkit.Tool(t, "mkfs.ext4")
	testkit.Tool(t, "zstd")
	t.Parallel()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{"os-release", "hosts", "motd"} {
		if err := os.WriteFile(filepath.Join(tree, "etc", s), bytes.Repeat([]byte(s+"\n"), 100*(i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "petrel-root.ext4")
	testkit.Run(t, "mkfs.ext4", "-q", "-E", "root_owner=0:0", "-d", tree, img, "16M")

	out := OutputName(img)
	if !strings.HasSuffix(out, ".ext4.zst") {
		t.Errorf("OutputName(%q) = %q, want a .zst suffix", img, out)
	}
	if err := CompressFile(context.Background(), img, out, imagecodec.LevelDefault); err != nil {
		t.Fatalf("CompressFile: %v", err)
	}
	again := filepath.Join(dir, "again.zst")
	if err := CompressFile(context.Background(), img, again, imagecodec.LevelDefault); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Error("compressing the same image twice gives different bytes")
	}
	orig, _ := os.ReadFile(img)
	if len(a) >= len(orig)/4 {
		t.Errorf("16 MiB mostly empty ext4 compressed to %d bytes", len(a))
	}
	testkit.Run(t, "zstd", "-q", "-d", "-f", out, "-o", filepath.Join(dir, "back.ext4"))
	if back, _ := os.ReadFile(filepath.Join(dir, "back.ext4")); !bytes.Equal(back, orig) {
		t.Error("zstd -d output differs from the image")
	}
	var back bytes.Buffer
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := imagecodec.Decompress(context.Background(), &back, f, int64(len(orig))); err != nil || !bytes.Equal(back.Bytes(), orig) {
		t.Errorf("Decompress: %v, equal %v", err, bytes.Equal(back.Bytes(), orig))
	}
}

func TestCompressFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := CompressFile(context.Background(), filepath.Join(dir, "none"), filepath.Join(dir, "x.zst"), imagecodec.LevelDefault); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CompressFile(missing) = %v, want ErrNotExist", err)
	}
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CompressFile(context.Background(), src, filepath.Join(dir, "x.zst"), imagecodec.Level(42)); err == nil {
		t.Error("CompressFile with a bad level succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind %v", ents)
	}
}
