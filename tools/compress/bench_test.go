package compress

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/pierrec/lz4/v4"

	"github.com/petrel-os/petrel/sources/imagecodec"
	"github.com/petrel-os/petrel/sources/testkit"
)

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
	data, err := os.ReadFile(testkit.BenchImage(b))
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
