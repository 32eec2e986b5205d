package growth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// mkfs makes an ext4 file system of kib KiB in a new file with the extra
// mkfs.ext4 arguments and returns its path.
func mkfs(t testing.TB, kib int, args ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("mkfs.ext4", append(append([]string{"-q", "-F"}, args...), p, fmt.Sprintf("%dk", kib))...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 (Debian package e2fsprogs): %v\n%s", err, out)
	}
	return p
}

// readSize reads the superblock of the file system image at p.
func readSize(t *testing.T, p string) Ext4Size {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := ReadExt4Size(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dumpe2fsBlocks returns the block count and size dumpe2fs -h reports.
func dumpe2fsBlocks(t testing.TB, dev string) (uint64, uint32) {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpe2fs -h %s: %v\n%s", dev, err, out)
	}
	field := func(name string) uint64 {
		m := regexp.MustCompile(`(?m)^` + name + `:\s+(\d+)$`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("dumpe2fs -h %s shows no %q:\n%s", dev, name, out)
		}
		n, _ := strconv.ParseUint(string(m[1]), 10, 64)
		return n
	}
	return field("Block count"), uint32(field("Block size"))
}

func TestReadExt4Size(t *testing.T) {
	for _, tt := range []struct {
		name string
		kib  int
		args []string
	}{
		{"4k blocks, 64bit", 64 << 10, []string{"-b", "4096", "-O", "64bit"}},
		{"1k blocks, no 64bit", 8 << 10, []string{"-b", "1024", "-O", "^64bit"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := mkfs(t, tt.kib, tt.args...)
			got := readSize(t, p)
			blocks, bs := dumpe2fsBlocks(t, p)
			if got.Blocks != blocks || got.BlockSize != bs || got.Bytes() != int64(tt.kib)<<10 {
				t.Errorf("ReadExt4Size = %+v, dumpe2fs says %d blocks of %d", got, blocks, bs)
			}
		})
	}
	// The high half of the block count counts only with the 64bit feature.
	sb := make([]byte, 1024)
	binary.LittleEndian.PutUint16(sb[0x38:], 0xEF53)
	binary.LittleEndian.PutUint32(sb[0x18:], 2) // 4096-byte blocks
	binary.LittleEndian.PutUint32(sb[0x4:], 5)
	binary.LittleEndian.PutUint32(sb[0x150:], 1)
	if s, err := parseExt4Size(sb); err != nil || s.Blocks != 5 {
		t.Errorf("without 64bit: %+v, %v; want 5 blocks", s, err)
	}
	binary.LittleEndian.PutUint32(sb[0x60:], 0x80)
	if s, err := parseExt4Size(sb); err != nil || s.Blocks != 1<<32+5 || s.BlockSize != 4096 {
		t.Errorf("with 64bit: %+v, %v; want 2^32+5 blocks of 4096", s, err)
	}
	if _, err := parseExt4Size(make([]byte, 1024)); !errors.Is(err, ErrNotExt4) {
		t.Errorf("zeros: %v, want ErrNotExt4", err)
	}
}

func FuzzParseExt4Size(f *testing.F) {
	b, err := os.ReadFile(mkfs(f, 8<<10, "-b", "1024", "-O", "64bit"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[1024:2048])
	f.Fuzz(func(t *testing.T, sb []byte) {
		if len(sb) < 1024 {
			return
		}
		s, err := parseExt4Size(sb[:1024])
		if err != nil {
			if !errors.Is(err, ErrNotExt4) {
				t.Fatalf("error %v does not wrap ErrNotExt4", err)
			}
			return
		}
		if s.Blocks == 0 || s.BlockSize < 1024 || s.BlockSize > 65536 || s.Bytes() <= 0 {
			t.Fatalf("accepted %+v", s)
		}
	})
}

// TestResizeTarget checks where the kernel's online resize would stop for
// the DATA file system of the image (1 GiB, 4 KiB blocks: 8 groups of
// 32768 blocks, 512 inode table blocks each): a last group too small for
// its metadata is left out.
func TestResizeTarget(t *testing.T) {
	s := readSize(t, mkfs(t, 1<<20, "-b", "4096", "-m", "0", "-O", "64bit,sparse_super,resize_inode"))
	if s.Blocks != 262144 || s.inodeTableBlks != 512 || s.blocksPerGroup != 32768 {
		t.Fatalf("superblock = %+v, want 262144 blocks, 32768 per group, 512 inode table blocks per group", s)
	}
	const bs = 4096
	for _, tt := range []struct {
		name string
		part int64 // blocks
		want uint64
	}{
		{"partition as large as the file system", 262144, 262144},
		{"the image's 1 MiB gap: group 8 too small", 262144 + 255, 262144},
		{"group 8 just too small", 262144 + 515, 262144},
		{"group 8 large enough", 262144 + 516, 262144 + 516},
		// Group 9 holds a superblock backup: 1 + 1 descriptor block + the
		// reserved GDT blocks count too.
		{"group 9 too small for its backup", 9*32768 + 516, 9 * 32768},
		{"group 9 just too small", 9*32768 + 517 + int64(s.reservedGDT), 9 * 32768},
		{"group 9 large enough", 9*32768 + 518 + int64(s.reservedGDT), 9*32768 + 518 + s.reservedGDT},
		{"9218 MiB: group 72 has 512 blocks, too few", 9218 * 256, 72 * 32768},
		{"9220 MiB", 9220 * 256, 9220 * 256},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.ResizeTarget(tt.part * bs); got != tt.want {
				t.Errorf("ResizeTarget(%d blocks) = %d, want %d", tt.part, got, tt.want)
			}
		})
	}
}
