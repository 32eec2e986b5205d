package vmdk

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

// BenchmarkConvert compares this writer with qemu-img on the same input:
//
//	go test -run '^$' -bench Convert -benchtime 1x ./tools/vmdk/
//
// It reports the output size in MB as "out-MB".
func BenchmarkConvert(b *testing.B) {
	testkit.Tool(b, "qemu-img")
	img := testkit.BenchImage(b)
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
	img := testkit.BenchImage(b)
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
