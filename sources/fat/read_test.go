package fat

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestReadFileOnMkfsImages reads every file of mtools-made images,
// including one whose clusters are not consecutive.
func TestReadFileOnMkfsImages(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ bits, sizeKiB string }{{"12", "1024"}, {"16", "8192"}, {"32", "40960"}} {
		t.Run("FAT"+tt.bits, func(t *testing.T) {
			t.Parallel()
			img, files := mkImage(t, tt.bits, tt.sizeKiB)
			raw, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			const off = 4096
			r := bytes.NewReader(append(make([]byte, off), raw...))
			// The test is only worth something if frag is fragmented.
			if _, _, err := FindFile(r, off, "frag"); !errors.Is(err, ErrFragmented) {
				t.Fatalf("FindFile(frag) = %v, want ErrFragmented: the image did not fragment the file", err)
			}
			fs, err := Open(r, off)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range files {
				got, err := fs.ReadFile(strings.ToLower(name))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("ReadFile(%s) = %d bytes, %v; want the file's %d bytes", name, len(got), err, len(want))
				}
			}
			for _, tc := range []struct {
				path string
				want error
			}{
				{"hole", ErrNotFound},
				{"EFI/BOOT", ErrIsDir},
				{"after/x", ErrNotFound},
			} {
				if _, err := fs.ReadFile(tc.path); !errors.Is(err, tc.want) {
					t.Errorf("ReadFile(%q) = %v, want %v", tc.path, err, tc.want)
				}
			}
		})
	}
}

// tinyImage is a FAT12 image made by hand: boot sector, one FAT, a
// 16-entry root directory and 9 one-sector clusters (2..10, cluster c at
// byte 512*(c+1)). The root holds GRUBENV, 5 bytes "hello" in cluster 2.
func tinyImage() []byte {
	img := make([]byte, 512*12)
	b := img[:512]
	copy(b, []byte{0xEB, 0x3C, 0x90})
	b[11], b[12] = 0, 2 // 512 bytes per sector
	b[13] = 1
	b[14] = 1 // reserved
	b[16] = 1 // FATs
	b[17] = 16
	b[19] = 12
	b[21] = 0xF8
	b[22] = 1
	b[510], b[511] = 0x55, 0xAA
	copy(img[512:], []byte{0xF8, 0xFF, 0xFF, 0xFF, 0x0F}) // cluster 2: EOC
	root := img[1024:]
	copy(root, "GRUBENV    ")
	root[11] = AttrArchive
	root[26] = 2
	root[28] = 5
	copy(img[1536:], "hello")
	return img
}

// setFAT12 sets the FAT12 entries of clusters 2 and 3 of a tinyImage.
func setFAT12(img []byte, c2, c3 uint16) {
	img[512+3] = byte(c2)
	img[512+4] = byte(c2>>8)&0x0F | byte(c3<<4)
	img[512+5] = byte(c3 >> 4)
}

func TestReadFileChains(t *testing.T) {
	t.Parallel()
	a, b := bytes.Repeat([]byte("A"), 512), bytes.Repeat([]byte("B"), 488)
	for _, tt := range []struct {
		name   string
		mutate func(img []byte)
		want   []byte
		err    string
	}{
		{name: "one cluster", mutate: func([]byte) {}, want: []byte("hello")},
		{
			// Cluster 3 comes first and points back to cluster 2.
			name: "backwards", want: append(bytes.Clone(a), b...),
			mutate: func(img []byte) {
				setFAT12(img, 0xFFF, 2)
				img[1024+26], img[1024+28], img[1024+29] = 3, 1000&0xFF, 1000>>8
				copy(img[512*4:], a)
				copy(img[512*3:], b)
			},
		},
		{
			name: "chain ends early", err: "ends after 1 clusters, the file needs 2",
			mutate: func(img []byte) { img[1024+28], img[1024+29] = 0, 3 }, // 768 bytes
		},
		{
			name: "free cluster in chain", err: "reaches invalid cluster 0",
			mutate: func(img []byte) { setFAT12(img, 0, 0); img[1024+29] = 3 },
		},
		{
			name: "loop", err: "chain from cluster 2 loops back to cluster 3",
			mutate: func(img []byte) { setFAT12(img, 3, 2); img[1024+28], img[1024+29] = 0xA0, 0x0F }, // 2→3→2…, 4000 bytes need 8 clusters
		},
		{
			name: "size beyond the volume", err: "needs 20 clusters, the volume has 9",
			mutate: func(img []byte) { img[1024+28], img[1024+29] = 0, 40 },
		},
		{
			name: "data past the end of the image", err: "cluster 10",
			mutate: func(img []byte) { img[1024+26] = 10 },
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			img := tinyImage()
			tt.mutate(img)
			if tt.name == "data past the end of the image" {
				img = img[:512*11]
			}
			fs, err := Open(bytes.NewReader(img), 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fs.ReadFile("grubenv")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ReadFile = %d bytes, %v; want error ~%q", len(got), err, tt.err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Errorf("ReadFile = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestReadFileEmpty(t *testing.T) {
	t.Parallel()
	img := tinyImage()
	img[1024+26], img[1024+28] = 0, 0
	fs, err := Open(bytes.NewReader(img), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.ReadFile("GRUBENV"); err != nil || got == nil || len(got) != 0 {
		t.Errorf("ReadFile(empty) = %q, %v; want empty, non-nil", got, err)
	}
}

// FuzzReadFile checks ReadFile against FindFile: a file FindFile places
// in one run of bytes must read back as exactly those bytes.
func FuzzReadFile(f *testing.F) {
	img := tinyImage()
	f.Add(img, "grubenv")
	frag := tinyImage()
	setFAT12(frag, 0xFFF, 2)
	frag[1024+26], frag[1024+29] = 3, 3
	f.Add(frag, "GRUBENV")
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		r := bytes.NewReader(data)
		fs, err := Open(r, 0)
		if err != nil {
			return
		}
		got, err := fs.ReadFile(path)
		if err != nil {
			return
		}
		e, err := fs.Lookup(path)
		if err != nil || int64(len(got)) != int64(e.Size) {
			t.Fatalf("ReadFile(%q) = %d bytes, entry %+v, %v", path, len(got), e, err)
		}
		if off, size, err := FindFile(r, 0, path); err == nil && !bytes.Equal(got, data[off:off+size]) {
			t.Fatalf("ReadFile(%q) differs from the %d bytes FindFile found at %d", path, size, off)
		}
	})
}
