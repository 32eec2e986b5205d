package vmdk

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// benchImage returns a realistic raw image: $PETREL_BENCH_IMAGE if set, else
// a 1536 MiB ext4 file system holding copies of /usr/lib/x86_64-linux-gnu and
// /usr/bin (about 960 MB on Debian 12), the size of a container-host root.
func benchImage(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("PETREL_BENCH_IMAGE"); p != "" {
		return p
	}
	needTool(b, "mkfs.ext4", "e2fsprogs")
	dir := b.TempDir()
	tree := filepath.Join(dir, "tree")
	for _, src := range []string{"/usr/lib/x86_64-linux-gnu", "/usr/bin"} {
		dst := filepath.Join(tree, filepath.Base(src))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			b.Fatal(err)
		}
		run(b, "cp", "-a", src, dst)
	}
	img := filepath.Join(dir, "root.ext4")
	run(b, "mkfs.ext4", "-q", "-O", "^has_journal", "-E", "lazy_itable_init=0", "-d", tree, img, "1536M")
	if err := os.RemoveAll(tree); err != nil {
		b.Fatal(err)
	}
	return img
}

// BenchmarkConvert compares this writer with qemu-img on the same input:
//
//	go test -run '^$' -bench Convert -benchtime 1x ./tools/vmdk/
//
// It reports the output size in MB as "out-MB".
func BenchmarkConvert(b *testing.B) {
	needTool(b, "qemu-img", "qemu-utils")
	img := benchImage(b)
	st, err := os.Stat(img)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	report := func(b *testing.B, out string) {
		st, err := os.Stat(out)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Size())/1e6, "out-MB")
	}
	for _, tt := range []struct {
		name string
		opts Options
	}{
		{"petrel/level6", Options{}},
		{"petrel/level1", Options{Level: 1}},
		{"petrel/level6-1worker", Options{Workers: 1}},
		{"petrel/level6-cid0x1", Options{CID: 1}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.SetBytes(st.Size())
			out := filepath.Join(dir, "petrel.vmdk")
			for b.Loop() {
				if err := ConvertFile(context.Background(), img, out, tt.opts); err != nil {
					b.Fatal(err)
				}
			}
			report(b, out)
		})
	}
	b.Run("qemu-img", func(b *testing.B) {
		b.SetBytes(st.Size())
		out := filepath.Join(dir, "qemu.vmdk")
		for b.Loop() {
			cmd := exec.Command("qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", img, out)
			if o, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("qemu-img convert: %v\n%s", err, o)
			}
		}
		report(b, out)
	})
}

// BenchmarkContentID measures the extra read pass that derives the CID when
// Options.CID is zero.
func BenchmarkContentID(b *testing.B) {
	img := benchImage(b)
	f, err := os.Open(img)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	for b.Loop() {
		if _, err := contentID(context.Background(), f, st.Size()); err != nil {
			b.Fatal(err)
		}
	}
}
