package fat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

// mtools is the environment mtools needs for an image without a partition
// table.
var mtools = []string{"MTOOLS_SKIP_CHECK=1"}

// mkImage makes a FAT image with mkfs.vfat and mtools: EFI/BOOT/grubenv
// (a lower-case long name), a large file, and a file "frag" that is
// fragmented because it was written into the hole a deleted file left.
func mkImage(t *testing.T, fatBits string, sizeKiB string) (img string, files map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	img = filepath.Join(dir, "esp.img")
	testkit.RunEnv(t, mtools, "mkfs.vfat", "-C", "-F", fatBits, "-S", "512", "-s", "1", "-i", "12345678", img, sizeKiB)
	files = map[string][]byte{
		"EFI/BOOT/grubenv":     append([]byte("# GRUB Environment Block\n"), bytes.Repeat([]byte("#"), 512-25)...),
		"EFI/BOOT/BOOTX64.EFI": bytes.Repeat([]byte("shim"), 5000),
		"hole":                 bytes.Repeat([]byte("h"), 1000),
		"after":                bytes.Repeat([]byte("a"), 100),
		"frag":                 bytes.Repeat([]byte("f"), 3000),
	}
	testkit.RunEnv(t, mtools, "mmd", "-i", img, "::/EFI", "::/EFI/BOOT")
	for _, name := range []string{"EFI/BOOT/grubenv", "EFI/BOOT/BOOTX64.EFI", "hole", "after"} {
		src := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
		if err := os.WriteFile(src, files[name], 0o644); err != nil {
			t.Fatal(err)
		}
		testkit.RunEnv(t, mtools, "mcopy", "-i", img, src, "::/"+name)
	}
	testkit.RunEnv(t, mtools, "mdel", "-i", img, "::/hole")
	delete(files, "hole")
	if fatBits == "32" {
		forgetNextFree(t, img)
	}
	src := filepath.Join(dir, "frag")
	if err := os.WriteFile(src, files["frag"], 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.RunEnv(t, mtools, "mcopy", "-i", img, src, "::/frag")
	return img, files
}

// forgetNextFree sets the FAT32 FSInfo next-free hint to "unknown", so
// that mtools allocates from the start of the volume, into holes, as it
// does on FAT12/16.
func forgetNextFree(t *testing.T, img string) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [512]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		t.Fatal(err)
	}
	fsinfo := int64(binary.LittleEndian.Uint16(b[48:])) * 512
	if _, err := f.WriteAt([]byte{0xFF, 0xFF, 0xFF, 0xFF}, fsinfo+492); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFindFileOnMkfsImages(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		bits, sizeKiB string
		want          Type
	}{
		{"12", "1024", FAT12},
		{"16", "8192", FAT16},
		{"32", "40960", FAT32},
	} {
		t.Run("FAT"+tt.bits, func(t *testing.T) {
			t.Parallel()
			img, files := mkImage(t, tt.bits, tt.sizeKiB)
			raw, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			// Put the filesystem at an offset, as in a disk image.
			const off = 1 << 20
			disk := append(make([]byte, off), raw...)
			r := bytes.NewReader(disk)
			fs, err := Open(r, off)
			if err != nil || fs.Type != tt.want {
				t.Fatalf("Open = %v, %v; want type %v", fs, err, tt.want)
			}
			for name, data := range files {
				o, n, err := FindFile(r, off, strings.ToUpper(name))
				if name == "frag" {
					if !errors.Is(err, ErrFragmented) {
						t.Errorf("FindFile(frag) = %d, %d, %v; want ErrFragmented", o, n, err)
					}
					continue
				}
				if err != nil || n != int64(len(data)) || !bytes.Equal(disk[o:o+n], data) {
					t.Errorf("FindFile(%s) = %d, %d, %v; want the file's %d bytes", name, o, n, err, len(data))
				}
			}
			if o, _, _ := FindFile(r, off, "EFI/BOOT/grubenv"); o%512 != 0 {
				t.Errorf("grubenv at %d, not sector-aligned", o)
			}
			for _, tc := range []struct {
				path string
				want error
			}{
				{"EFI/BOOT/missing", ErrNotFound},
				{"EFI/BOOT", ErrIsDir},
				{"after/x", ErrNotFound},
			} {
				if _, _, err := FindFile(r, off, tc.path); !errors.Is(err, tc.want) {
					t.Errorf("FindFile(%q) = %v, want %v", tc.path, err, tc.want)
				}
			}
		})
	}
}

func TestOpenNamesBadField(t *testing.T) {
	t.Parallel()
	img, _ := mkImage(t, "16", "8192")
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		mutate func(b []byte)
		want   string
	}{
		{"signature", func(b []byte) { b[511] = 0 }, "Signature"},
		{"bytes per sector", func(b []byte) { b[11], b[12] = 0, 3 }, "BytesPerSector"},
		{"sectors per cluster", func(b []byte) { b[13] = 3 }, "SectorsPerCluster"},
		{"FAT size", func(b []byte) { b[22], b[23] = 1, 0 }, "FATSize"},
		{"total sectors", func(b []byte) { b[19], b[20] = 10, 0 }, "TotalSectors"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := bytes.Clone(raw)
			tt.mutate(b)
			_, err := Open(bytes.NewReader(b), 0)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open = %v, want ErrInvalid naming %s", err, tt.want)
			}
		})
	}
}

func FuzzFindFile(f *testing.F) {
	img := tinyImage()
	f.Add(img, "grubenv")
	f.Add(img, "EFI/BOOT/grubenv")
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		r := bytes.NewReader(data)
		off, size, err := FindFile(r, 0, path)
		if err != nil {
			return
		}
		if off < 0 || size < 0 {
			t.Fatalf("FindFile = %d, %d", off, size)
		}
	})
}
