package sparse

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// TestSHA256 compares the hash of sparse files with holes at every kind
// of place against the hash of all their bytes read in full.
func TestSHA256(t *testing.T) {
	for _, tt := range []struct {
		name string
		size int64
		data map[int64]string
	}{
		{"empty", 0, nil},
		{"only a hole", 5 << 20, nil},
		{"data at both ends and a partial last block", 3<<20 + 123, map[int64]string{0: "start", 3<<20 + 100: "end"}},
		{"data across a block boundary", 4 << 20, map[int64]string{1<<20 - 3: "across"}},
		{"no holes", 1000, map[int64]string{0: string(make([]byte, 1000))}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(tt.size); err != nil {
				t.Fatal(err)
			}
			for off, s := range tt.data {
				if _, err := f.WriteAt([]byte(s), off); err != nil {
					t.Fatal(err)
				}
			}
			f.Close()
			all, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			want := sha256.Sum256(all)
			got, size, err := SHA256(p)
			if err != nil || got != hex.EncodeToString(want[:]) || size != tt.size {
				t.Errorf("SHA256 = %s, %d, %v; want %x, %d", got, size, err, want, tt.size)
			}
		})
	}
}

func TestDataBlocks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 40<<20+5); err != nil {
		t.Fatal(err)
	}
	marks, err := DataBlocks(f, 64<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range marks {
		// The file system may allocate a little around the write, never
		// the whole file.
		if i < 32 && m {
			t.Errorf("block %d of the hole is marked", i)
		}
	}
	if !marks[40] {
		t.Error("block 40 with data is not marked")
	}
}
