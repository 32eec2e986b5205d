package compress

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pierrec/lz4/v4"

	"github.com/petrel-os/petrel/sources/imagecodec"
)

// benchImage returns a realistic update image: $PETREL_BENCH_IMAGE if set,
// else a 1536 MiB ext4 file system holding copies of /usr/lib/x86_64-linux-gnu
// and /usr/bin (about 960 MB on Debian 12).
func benchImage(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("PETREL_BENCH_IMAGE"); p != "" {
		return p
	}
	needTool(b, "mkfs.ext4", "e2fsprogs")
	dir := b.TempDir()
	tree := filepath.Join(dir, "tree")
	for _, src := range []string{"/usr/lib/x86_64-linux-gnu", "/usr/bin"} {
		if err := os.MkdirAll(tree, 0o755); err != nil {
			b.Fatal(err)
		}
		run(b, "cp", "-a", src, filepath.Join(tree, filepath.Base(src)))
	}
	img := filepath.Join(dir, "root.ext4")
	run(b, "mkfs.ext4", "-q", "-O", "^has_journal", "-E", "lazy_itable_init=0", "-d", tree, img, "1536M")
	if err := os.RemoveAll(tree); err != nil {
		b.Fatal(err)
	}
	return img
}

type codec struct {
	name       string
	compress   func(dst io.Writer, src io.Reader) error
	decompress func(dst io.Writer, src io.Reader) error
}

func lz4Codec(name string, level lz4.CompressionLevel) codec {
	return codec{
		name: name,
		compress: func(dst io.Writer, src io.Reader) error {
			w := lz4.NewWriter(dst)
			if err := w.Apply(lz4.ConcurrencyOption(0), lz4.CompressionLevelOption(level)); err != nil {
				return err
			}
			if _, err := io.Copy(w, src); err != nil {
				return err
			}
			return w.Close()
		},
		decompress: func(dst io.Writer, src io.Reader) error {
			_, err := io.Copy(dst, lz4.NewReader(src))
			return err
		},
	}
}

func zstdCodec(name string, level imagecodec.Level) codec {
	return codec{
		name: name,
		compress: func(dst io.Writer, src io.Reader) error {
			return imagecodec.Compress(context.Background(), dst, src, level)
		},
		decompress: func(dst io.Writer, src io.Reader) error {
			_, err := imagecodec.Decompress(context.Background(), dst, src, 0)
			return err
		},
	}
}

// BenchmarkCodec measures lz4 (pierrec/lz4/v4) against zstd
// (klauspost/compress through imagecodec) on a realistic root image, both
// directions, all cores:
//
//	go test -run '^$' -bench Codec -benchtime 1x ./tools/compress/
//
// "out-MB" is the compressed size. lz4-9 takes minutes on 2 cores.
func BenchmarkCodec(b *testing.B) {
	data, err := os.ReadFile(benchImage(b))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []codec{
		lz4Codec("lz4-fast", lz4.Fast),
		lz4Codec("lz4-9", lz4.Level9),
		zstdCodec("zstd-fastest", imagecodec.LevelFastest),
		zstdCodec("zstd-default", imagecodec.LevelDefault),
		zstdCodec("zstd-better", imagecodec.LevelBetter),
	} {
		var packed []byte
		b.Run(c.name+"/compress", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var out bytes.Buffer
				if err := c.compress(&out, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
				packed = out.Bytes()
			}
			b.ReportMetric(float64(len(packed))/1e6, "out-MB")
		})
		b.Run(c.name+"/decompress", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := c.decompress(io.Discard, bytes.NewReader(packed)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
