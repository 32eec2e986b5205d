package verity

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

// benchBytes is the data size of the benchmarks: 256 MiB of pseudo-random
// data (every seventh block zero), in a file in the page cache.
const benchBytes = 256 << 20

// benchFiles writes the benchmark data file, syncs it so that writeback
// does not slow the first runs, and returns its path and contents.
func benchFiles(b *testing.B) (dir, dataPath string, data []byte) {
	b.Helper()
	dir = b.TempDir()
	dataPath, data = writeData(b, dir, benchBytes/4096, 4096, 256)
	f, err := os.Open(dataPath)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return dir, dataPath, data
}

func benchParams() Params {
	return Params{Salt: DeriveSalt([]byte("bench")), UUID: DeriveUUID([]byte("bench"))}
}

// BenchmarkFormat compares Format with `veritysetup format` on the same
// file in the same run:
//
//	go test -run '^$' -bench . ./sources/verity/
//
// "go" reads the data file and writes the hash file as the image builder
// does; "go-memory" hashes from and to memory (the hashing ceiling);
// "veritysetup" execs veritysetup format on the same file. All report MB/s
// of data.
func BenchmarkFormat(b *testing.B) {
	dir, dataPath, data := benchFiles(b)
	p := benchParams()
	vs := testkit.Tool(b, "veritysetup")

	b.Run("go", func(b *testing.B) {
		b.SetBytes(benchBytes)
		hashPath := filepath.Join(dir, "go.hash")
		for b.Loop() {
			formatFile(b, dataPath, hashPath, p)
		}
	})
	b.Run("go-memory", func(b *testing.B) {
		b.SetBytes(benchBytes)
		b.ReportAllocs()
		size, err := HashSize(benchBytes, p)
		if err != nil {
			b.Fatal(err)
		}
		hash := &memWriter{b: make([]byte, size)}
		for b.Loop() {
			if _, err := Format(context.Background(), bytes.NewReader(data), benchBytes, hash, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("veritysetup", func(b *testing.B) {
		b.SetBytes(benchBytes)
		hashPath := filepath.Join(dir, "vs.hash")
		args := []string{"format", "--format", "1", "--hash", "sha256",
			"--data-block-size", "4096", "--hash-block-size", "4096",
			"--salt", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			"--uuid", uuidString(p.UUID), dataPath, hashPath}
		for b.Loop() {
			if out, err := exec.Command(vs, args...).CombinedOutput(); err != nil {
				b.Fatalf("veritysetup format: %v\n%s", err, out)
			}
		}
	})
}

// BenchmarkVerify compares Verify with `veritysetup verify` the same way.
func BenchmarkVerify(b *testing.B) {
	dir, dataPath, _ := benchFiles(b)
	hashPath := filepath.Join(dir, "go.hash")
	tree := formatFile(b, dataPath, hashPath, benchParams())
	b.Run("go", func(b *testing.B) {
		b.SetBytes(benchBytes)
		for b.Loop() {
			if err := verifyFiles(b, dataPath, hashPath, tree.RootHash); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("veritysetup", func(b *testing.B) {
		b.SetBytes(benchBytes)
		for b.Loop() {
			if ok, _, out := veritysetupVerify(b, dataPath, hashPath, tree.RootHash); !ok {
				b.Fatalf("veritysetup verify failed:\n%s", out)
			}
		}
	})
}
