package initramfs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const (
	testBootGUID = "0b8ba6fd-0d4e-4fc2-9a37-bd9ae1f12f3c"
	testRootGUID = "1C4E8F0A-6A55-4B7F-8D9E-1D2C3B4A5F60"
	testHashGUID = "2d5f901b-7b66-4c80-9eaf-2e3d4c5b6a71"
)

// makeGPTDisk lays out a 4 MiB disk with sgdisk: BOOT, ROOT, HASH.
func makeGPTDisk(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("sgdisk"); err != nil {
		t.Fatal("sgdisk not found: install the Debian package gdisk")
	}
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sgdisk", "-o",
		"-n", "1:2048:4095", "-t", "1:8300", "-u", "1:"+testBootGUID,
		"-n", "2:4096:6143", "-t", "2:8304", "-u", "2:"+testRootGUID,
		"-n", "3:6144:7167", "-t", "3:8300", "-u", "3:"+testHashGUID,
		"-c", "1:PETREL-BOOT-A", "-c", "3:PETREL-HASH-A", p).CombinedOutput()
	if err != nil {
		t.Fatalf("sgdisk: %v\n%s", err, out)
	}
	return p
}

func TestReadGPT(t *testing.T) {
	disk := makeGPTDisk(t)
	data, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, img []byte) {
		t.Helper()
		parts, err := readGPT(bytes.NewReader(img), 512, int64(len(img)))
		if err != nil {
			t.Fatalf("readGPT: %v", err)
		}
		want := []gptPartition{
			{Number: 1, UniqueID: testBootGUID, TypeID: "0fc63daf-8483-4772-8e79-3d69d8477de4", Name: "PETREL-BOOT-A", FirstLBA: 2048, LastLBA: 4095},
			{Number: 2, UniqueID: "1c4e8f0a-6a55-4b7f-8d9e-1d2c3b4a5f60", TypeID: "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", FirstLBA: 4096, LastLBA: 6143},
			{Number: 3, UniqueID: testHashGUID, TypeID: "0fc63daf-8483-4772-8e79-3d69d8477de4", Name: "PETREL-HASH-A", FirstLBA: 6144, LastLBA: 7167},
		}
		if len(parts) != len(want) {
			t.Fatalf("readGPT = %+v, want %+v", parts, want)
		}
		for i := range want {
			if parts[i] != want[i] {
				t.Errorf("partition %d = %+v, want %+v", i+1, parts[i], want[i])
			}
		}
	}
	t.Run("primary", func(t *testing.T) { check(t, data) })
	t.Run("backup after damaged primary", func(t *testing.T) {
		img := append([]byte{}, data...)
		img[512+20] ^= 0xff // breaks the primary header checksum
		check(t, img)
	})
	t.Run("no GPT", func(t *testing.T) {
		_, err := readGPT(bytes.NewReader(make([]byte, 1<<20)), 512, 1<<20)
		if !errors.Is(err, ErrNoGPT) {
			t.Fatalf("readGPT of zeros: %v, want ErrNoGPT", err)
		}
	})
	t.Run("entry checksum", func(t *testing.T) {
		img := append([]byte{}, data...)
		img[1024+40] ^= 0xff            // primary entries
		img[len(img)-33*512+40] ^= 0xff // backup entries
		_, err := readGPT(bytes.NewReader(img), 512, int64(len(img)))
		if !errors.Is(err, ErrNoGPT) {
			t.Fatalf("readGPT with damaged entries: %v, want ErrNoGPT", err)
		}
	})
}

func FuzzParseGPT(f *testing.F) {
	disk := makeGPTDisk(f)
	data, err := os.ReadFile(disk)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[512:1024], data[1024:1024+128*128])
	f.Fuzz(func(t *testing.T, hdr, entries []byte) {
		read := func(off int64, n int) ([]byte, error) {
			if n > len(entries) {
				return nil, errors.New("short")
			}
			return entries[:n], nil
		}
		parts, err := parseGPT(hdr, 1, read, 512)
		if err == nil && len(parts) > gptMaxEntries {
			t.Fatalf("parseGPT returned %d partitions", len(parts))
		}
	})
}
