package bootstate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/fat"
	"github.com/petrel-os/petrel/sources/testkit"
)

// mkESP makes a FAT image with mkfs.vfat and mtools, holding a grubenv in
// /EFI/BOOT after many decoy files (so the directory spans clusters), and
// returns the image and the grubenv content. With content nil the grubenv
// is the initial state's block; with an empty content there is none.
func mkESP(t *testing.T, fatBits, kib int, content []byte) (string, []byte) {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "esp.img")
	run := func(name string, args ...string) {
		t.Helper()
		testkit.RunEnv(t, []string{"MTOOLS_SKIP_CHECK=1"}, name, args...)
	}
	run("mkfs.vfat", "-C", "-F", fmt.Sprint(fatBits), "-s", "1", img, fmt.Sprint(kib))
	run("mmd", "-i", img, "::/EFI", "::/EFI/BOOT", "::/EFI/other")
	var decoys []string
	for i := 0; i < 40; i++ {
		p := filepath.Join(dir, fmt.Sprintf("D%02d.TXT", i))
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, 700), 0o644); err != nil {
			t.Fatal(err)
		}
		decoys = append(decoys, p)
	}
	run("mcopy", append(append([]string{"-i", img}, decoys...), "::/EFI/BOOT/")...)
	if content == nil {
		env, err := Initial().Env()
		if err != nil {
			t.Fatal(err)
		}
		if content, err = env.Encode(); err != nil {
			t.Fatal(err)
		}
	}
	if len(content) == 0 {
		return img, nil
	}
	p := filepath.Join(dir, "grubenv")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	run("mcopy", "-i", img, p, "::/EFI/BOOT/grubenv")
	return img, content
}

func TestLocateEnv(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		bits, kib int
	}{{12, 2048}, {16, 32768}, {32, 40000}} {
		t.Run(fmt.Sprintf("FAT%d", tt.bits), func(t *testing.T) {
			t.Parallel()
			img, content := mkESP(t, tt.bits, tt.kib, nil)
			data, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			// Put the file system at 1 MiB into a "disk".
			const base = 1 << 20
			disk := append(make([]byte, base), data...)
			dev := bytes.NewReader(disk)
			ctx := context.Background()
			off, err := LocateEnv(ctx, dev, base)
			if err != nil {
				t.Fatalf("LocateEnv: %v", err)
			}
			if !bytes.Equal(disk[off:off+BlockSize], content) {
				t.Fatalf("LocateEnv = %d, but the sector there is not the grubenv", off)
			}
			s, _, err := Read(ctx, dev, off)
			if err != nil || s != Initial() {
				t.Errorf("Read at located offset = %+v, %v", s, err)
			}
			if _, err := LocateEnv(ctx, dev, 0); !errors.Is(err, fat.ErrInvalid) {
				t.Errorf("LocateEnv at offset 0 (no FAT) = %v, want fat.ErrInvalid", err)
			}
		})
	}
}

func TestLocateEnvErrors(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name    string
		ctx     context.Context
		content []byte // of the grubenv; nil: the initial state
		want    error
		msg     string
	}{
		{name: "missing", content: []byte{}, want: ErrNotFound, msg: "locate /EFI/BOOT/grubenv on the FAT filesystem at 0: "},
		{name: "two sectors", content: bytes.Repeat([]byte("#"), 2*BlockSize), msg: "file is 1024 bytes, want 512 (one sector)"},
		{name: "short", content: []byte("# GRUB Environment Block\n"), msg: "file is 25 bytes"},
		{name: "cancelled", ctx: cancelled, want: context.Canceled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			img, _ := mkESP(t, 16, 8192, tt.content)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			off, err := LocateEnv(ctx, f, 0)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("LocateEnv = %d, %v; want an error matching %v and containing %q", off, err, tt.want, tt.msg)
			}
		})
	}
}

func FuzzLocateEnv(f *testing.F) {
	// Seed: a minimal FAT12 boot sector plus a little data.
	seed := make([]byte, 8192)
	copy(seed[11:], []byte{0, 2, 1, 1, 0, 2, 16, 0, 16, 0xf8, 1, 0})
	seed[510], seed[511] = 0x55, 0xaa
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 512 {
			return
		}
		off, err := LocateEnv(context.Background(), bytes.NewReader(data), 0)
		if err == nil && (off < 0 || off+BlockSize > int64(len(data))+BlockSize) {
			t.Fatalf("LocateEnv = %d outside a %d-byte device", off, len(data))
		}
	})
}
