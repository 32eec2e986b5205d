package growth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// run runs a command and fails the test with its output.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// attach attaches img as a loop device with its partitions and returns
// the device; it is detached when the test ends. It needs root: without
// loop devices the test fails (CI runs as root; setup installs losetup).
func attach(t *testing.T, img string) string {
	t.Helper()
	if f, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0); err != nil {
		t.Fatalf("open /dev/loop-control (this test needs root for loop devices): %v", err)
	} else {
		f.Close()
	}
	loop := strings.TrimSpace(run(t, "losetup", "--find", "--show", "--partscan", img))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", loop).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v\n%s", loop, err, out)
		}
	})
	// Kernels without the GPT parser create no partitions on their own;
	// partx adds them from the table (BLKPG_ADD_PARTITION).
	run(t, "partx", "--update", loop)
	return loop
}

// hasCap reports whether the test process has capability c in effect.
func hasCap(t *testing.T, c int) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n&(1<<c) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

// sysSize returns a block device's size in bytes as sysfs reports it.
func sysSize(t *testing.T, dev string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(dev), "size"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n * 512
}

// TestGrowOnLoopDevice runs the first-boot steps with the real ioctls: an
// image whose DATA holds a mounted ext4 file system, on a loop device 200
// MiB larger than the image. The backup GPT moves to the end, DATA and
// the kernel's partition grow, the mounted file system grows online, and
// a second run changes nothing.
func TestGrowOnLoopDevice(t *testing.T) {
	ctx := context.Background()
	const imgSize, extra = 64 * mib, 200 * mib
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, image(t, imgSize, 512), 0o644); err != nil {
		t.Fatal(err)
	}
	dataBytes := int64(imgSize - 2*mib - 33*512)
	run(t, "mkfs.ext4", "-q", "-F", "-b", "4096", "-m", "0", "-E", fmt.Sprintf("offset=%d", 2*mib), img, fmt.Sprintf("%dk", dataBytes/4096*4))
	if err := os.Truncate(img, imgSize+extra); err != nil {
		t.Fatal(err)
	}
	loop := attach(t, img)
	part := loop + "p2"
	if got := sysSize(t, part); got != dataBytes {
		t.Fatalf("%s is %d bytes before growth, want %d", part, got, dataBytes)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(part, mnt, "ext4", 0, ""); err != nil {
		t.Fatalf("mount %s: %v", part, err)
	}
	mounted := true
	unmount := func() {
		if mounted {
			mounted = false
			if err := unix.Unmount(mnt, 0); err != nil {
				t.Errorf("unmount %s: %v", mnt, err)
			}
		}
	}
	t.Cleanup(unmount)
	if err := os.WriteFile(filepath.Join(mnt, "keep"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}

	r, err := GrowPartition(ctx, loop, part, dataGUID)
	if err != nil {
		t.Fatalf("GrowPartition: %v (report %+v)", err, r)
	}
	newBytes := dataBytes + extra
	if r.Table.BackupFrom != imgSize/512-1 || r.Table.BackupTo != (imgSize+extra)/512-1 || !r.Part.Grown() || r.Part.NewBytes() != newBytes ||
		r.KernelBytes != dataBytes || !r.KernelResized {
		t.Errorf("GrowPartition = %+v, want the backup moved, DATA grown to %d bytes and the kernel told", r, newBytes)
	}
	if got := sysSize(t, part); got != newBytes {
		t.Errorf("the kernel knows %s as %d bytes, want %d", part, got, newBytes)
	}
	fs, err := GrowFileSystem(ctx, part, mnt)
	if !hasCap(t, unix.CAP_SYS_RESOURCE) {
		// EXT4_IOC_RESIZE_FS needs CAP_SYS_RESOURCE; the e2e boot tests
		// run it as the initramfs does, with every capability.
		if !errors.Is(err, unix.EPERM) {
			t.Errorf("GrowFileSystem without CAP_SYS_RESOURCE: %v, want EPERM", err)
		}
		t.Log("EXT4_IOC_RESIZE_FS refused with EPERM: this process lacks CAP_SYS_RESOURCE; the e2e boot tests cover it")
		unmount()
		if out, err := exec.Command("sgdisk", "-v", loop).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
			t.Errorf("sgdisk -v %s: %v\n%s", loop, err, out)
		}
		run(t, "e2fsck", "-fn", part)
		return
	}
	if err != nil {
		t.Fatalf("GrowFileSystem: %v", err)
	}
	if !fs.Grown() || fs.Before.Bytes() != dataBytes/4096*4096 || fs.After.Bytes() > newBytes || fs.After.Bytes() < newBytes-int64(fs.After.BlockSize)*32768 {
		t.Errorf("GrowFileSystem = %+v, want the file system grown from %d bytes to at most %d and less than one block group short", fs, dataBytes, newBytes)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil || int64(st.Blocks)*st.Bsize <= dataBytes {
		t.Errorf("statfs %s: %d blocks of %d, %v; want more than %d bytes", mnt, st.Blocks, st.Bsize, err, dataBytes)
	}
	// Idempotent: a second boot changes nothing.
	r2, err := GrowPartition(ctx, loop, part, dataGUID)
	if err != nil || r2.Table.Changed() || r2.Part.Grown() || r2.KernelResized {
		t.Errorf("second GrowPartition = %+v, %v; want nothing done", r2, err)
	}
	fs2, err := GrowFileSystem(ctx, part, mnt)
	if err != nil || fs2.Grown() || fs2.Before != fs.After {
		t.Errorf("second GrowFileSystem = %+v, %v; want nothing done", fs2, err)
	}
	unmount()
	if out, err := exec.Command("sgdisk", "-v", loop).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
		t.Errorf("sgdisk -v %s: %v\n%s", loop, err, out)
	}
	run(t, "e2fsck", "-fn", part)
	if blocks, _ := dumpe2fsBlocks(t, part); blocks != fs.After.Blocks {
		t.Errorf("dumpe2fs: %d blocks, GrowFileSystem said %d", blocks, fs.After.Blocks)
	}
}
