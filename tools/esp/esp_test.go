package esp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/fat"
	"github.com/petrel-os/petrel/sources/testkit"
)

// grubenv returns a 512-byte GRUB environment block.
func grubenv(vars string) []byte {
	b := []byte("# GRUB Environment Block\n" + vars)
	return append(b, bytes.Repeat([]byte("#"), 512-len(b))...)
}

func sampleFiles() []File {
	big := make([]byte, 1<<20+123) // spans many clusters
	for i := range big {
		big[i] = byte(i * 7)
	}
	return []File{
		{Path: "EFI/BOOT/BOOTX64.EFI", Data: big},
		{Path: "EFI/BOOT/grubx64.efi", Data: bytes.Repeat([]byte("grub"), 3000)},
		{Path: "EFI/BOOT/grubenv", Data: grubenv("boot_slot=A\n")},
		{Path: "EFI/BOOT/A very long file name.conf", Data: []byte("long\n")},
		{Path: "EFI/BOOT/empty", Data: nil},
		{Path: "loader/entries/slot-a+3.conf", Data: []byte("title A\n")},
	}
}

func TestWriteCheckedByRealTools(t *testing.T) {
	for _, tt := range []struct {
		name    string
		size    int64
		opts    Options
		wantFAT string
	}{
		{"5MiB", 5 << 20, Options{}, "FAT16"},
		{"10MiB label", 10 << 20, Options{Label: "EFI-SYSTEM", Epoch: 1700000000}, "FAT16"},
		{"40MiB forced FAT32", 40 << 20, Options{FAT32: true, Label: "EFI"}, "FAT32"},
		{"600MiB", 600 << 20, Options{Epoch: 1700000000}, "FAT32"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			const off = 5 << 20 // like EFI-A at 5 MiB
			files := sampleFiles()
			disk := filepath.Join(dir, "disk.img")
			res := writeFile(t, disk, off, tt.size, files, tt.opts)
			if res.Type != tt.wantFAT {
				t.Errorf("type = %s, want %s", res.Type, tt.wantFAT)
			}
			// fsck.vfat cannot take an offset: check a copy written at 0.
			part := filepath.Join(dir, "part.img")
			writeFile(t, part, 0, tt.size, files, tt.opts)
			out := testkit.Run(t, "fsck.vfat", "-n", "-V", part)
			if strings.Contains(out, "differ") || strings.Contains(out, "Free cluster") {
				t.Errorf("fsck.vfat -n -V:\n%s", out)
			}
			entries := len(files) + 4 // 4 directories: EFI, EFI/BOOT, loader, loader/entries
			if tt.opts.Label != "" {
				entries++
			}
			if !strings.Contains(out, fmt.Sprintf(": %d files,", entries)) {
				t.Errorf("fsck.vfat -n -V does not report %d files and directories:\n%s", entries, out)
			}
			// mtools reads every file back, addressed inside the disk image.
			for _, file := range files {
				cmd := exec.Command(testkit.Tool(t, "mtype"), "-i", fmt.Sprintf("%s@@%d", disk, off), "::/"+file.Path)
				cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
				if got := testkit.RunCmd(t, cmd); got != string(file.Data) {
					t.Errorf("mtype %s: %d bytes, want %d", file.Path, len(got), len(file.Data))
				}
			}
			// Result and FindFile agree; the bytes are where they say.
			img, err := os.Open(disk)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			for _, file := range files {
				p, ok := res.File(file.Path)
				if !ok {
					t.Fatalf("Result lacks %s", file.Path)
				}
				o, n, err := fat.FindFile(img, off, strings.ToLower(file.Path))
				if err != nil || o != p.Offset || n != p.Size {
					t.Errorf("FindFile(%s) = %d, %d, %v; Result says %d, %d", file.Path, o, n, err, p.Offset, p.Size)
				}
				got := make([]byte, n)
				if _, err := img.ReadAt(got, o); n > 0 && (err != nil || !bytes.Equal(got, file.Data)) {
					t.Errorf("bytes at %d are not %s (%v)", o, file.Path, err)
				}
			}
			env, _ := res.File("EFI/BOOT/grubenv")
			if env.Offset%SectorSize != 0 || env.Size != SectorSize {
				t.Errorf("grubenv at %d, %d bytes: want one whole sector", env.Offset, env.Size)
			}
			// Byte-reproducible (hashing whole images is slow: small ones only).
			if tt.size > 64<<20 {
				return
			}
			again := filepath.Join(dir, "again.img")
			writeFile(t, again, off, tt.size, sampleFiles(), tt.opts)
			if a, b := testkit.FileSHA256(t, disk), testkit.FileSHA256(t, again); a != b {
				t.Error("a second write differs")
			}
		})
	}
}

// writeFile writes files as a FAT filesystem at off of a new sparse file.
func writeFile(t *testing.T, path string, off, size int64, files []File, opts Options) *Result {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(off + size + 1<<20); err != nil {
		t.Fatal(err)
	}
	res, err := WriteWithOptions(context.Background(), f, off, size, files, opts)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return res
}

// TestGrubenvRewriteInPlace rewrites the grubenv sector the way the
// on-host flipper will and checks the filesystem is still clean.
func TestGrubenvRewriteInPlace(t *testing.T) {
	ctx := context.Background()
	part := filepath.Join(t.TempDir(), "esp.img")
	f, err := os.Create(part)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(5 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(ctx, f, 0, 5<<20, sampleFiles()); err != nil {
		t.Fatal(err)
	}
	off, size, err := fat.FindFile(f, 0, "EFI/BOOT/grubenv")
	if err != nil || size != 512 {
		t.Fatalf("FindFile = %d, %d, %v", off, size, err)
	}
	want := grubenv("boot_slot=B\n")
	if _, err := f.WriteAt(want, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := testkit.Run(t, "mtype", "-i", part, "::/EFI/BOOT/grubenv"); got != string(want) {
		t.Errorf("mtype after rewrite: %q", got)
	}
	testkit.Run(t, "fsck.vfat", "-n", part)
}

func TestWriteErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		size  int64
		files []File
		opts  Options
		want  string
		is    error
	}{
		{"too small for FAT16", 1 << 20, nil, Options{}, "FAT16 needs more than", ErrTooSmall},
		{"files do not fit", 3 << 20, []File{{Path: "big", Data: make([]byte, 4<<20)}}, Options{}, "files need more than", ErrTooSmall},
		{"bad paths", 5 << 20, []File{{Path: "a//b"}, {Path: "x:y"}, {Path: "A"}, {Path: "a"}}, Options{}, "already exists", nil},
		{"bad label", 5 << 20, nil, Options{Label: "efi"}, "label", nil},
		{"FAT32 too small", 20 << 20, nil, Options{FAT32: true}, "too few for FAT32", ErrTooSmall},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := WriteWithOptions(ctx, &memWriter{b: make([]byte, tt.size)}, 0, tt.size, tt.files, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("Write = %v, want an error containing %q (is %v)", err, tt.want, tt.is)
			}
		})
	}
}

type memWriter struct{ b []byte }

func (m *memWriter) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(m.b)) {
		return 0, errors.New("write past end")
	}
	return copy(m.b[off:], p), nil
}
