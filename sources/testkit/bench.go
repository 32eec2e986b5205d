package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchImage returns a realistic image for the benchmarks of the image
// codecs and converters: $PETREL_BENCH_IMAGE if set, else a 1536 MiB ext4
// file system holding copies of /usr/lib/x86_64-linux-gnu and /usr/bin
// (about 960 MB on Debian 12), the size of a container host's root.
func BenchImage(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("PETREL_BENCH_IMAGE"); p != "" {
		return p
	}
	dir := b.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		b.Fatal(err)
	}
	for _, src := range []string{"/usr/lib/x86_64-linux-gnu", "/usr/bin"} {
		RunCmd(b, exec.Command("cp", "-a", src, filepath.Join(tree, filepath.Base(src))))
	}
	img := filepath.Join(dir, "root.ext4")
	Run(b, "mkfs.ext4", "-q", "-O", "^has_journal", "-E", "lazy_itable_init=0", "-d", tree, img, "1536M")
	if err := os.RemoveAll(tree); err != nil {
		b.Fatal(err)
	}
	return img
}
