package fsimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/testkit"
)

const (
	testUUID  = "5d1c7a52-0f49-4e1b-9a57-3a1c2b7d9e10"
	testEpoch = 1700000000
)

// makeTree writes the same small root filesystem tree under dir. Calls
// made at different times differ in ctimes, atimes and (for files written
// "now") mtimes, and non-root callers make files owned by themselves.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"etc/os-release":          "NAME=Petrel\n",
		"usr/bin/tool":            strings.Repeat("#!/bin/sh\necho tool\n", 500),
		"usr/lib/libx.so.1":       strings.Repeat("\x7fELF", 40000),
		"usr/share/doc/a b/c.txt": "spaces\n",
		"var/empty/.keep":         "",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o755))
	must(t, os.Symlink("libx.so.1", filepath.Join(dir, "usr/lib/libx.so")))
	must(t, os.Link(filepath.Join(dir, "usr/bin/tool"), filepath.Join(dir, "usr/bin/tool2")))
	// An old mtime is kept; newer ones are clamped to the epoch.
	old := time.Unix(1600000000, 0)
	must(t, os.Chtimes(filepath.Join(dir, "etc/os-release"), old, old))
	if os.Geteuid() == 0 {
		// Imitate a rootless copy.
		must(t, os.Lchown(filepath.Join(dir, "usr/bin/tool"), 1000, 1000))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var (
	treesOnce sync.Once
	treeA     string
	treeB     string
	treesErr  error
)

// twoTrees returns two fresh copies of the same tree, made more than a
// second apart so that their ctimes differ.
func twoTrees(t *testing.T) (string, string) {
	treesOnce.Do(func() {
		base, err := os.MkdirTemp("", "fsimage-trees-")
		if err != nil {
			treesErr = err
			return
		}
		treeA, treeB = filepath.Join(base, "a"), filepath.Join(base, "b")
		makeTree(t, treeA)
		time.Sleep(1100 * time.Millisecond)
		makeTree(t, treeB)
	})
	if treesErr != nil {
		t.Fatal(treesErr)
	}
	return treeA, treeB
}

func TestMain(m *testing.M) {
	code := m.Run()
	if treeA != "" {
		os.RemoveAll(filepath.Dir(treeA))
	}
	os.Exit(code)
}

func fileBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExt4ReproducibleAndClean(t *testing.T) {
	testkit.Tools(t, "mkfs.ext4", "debugfs", "e2fsck")
	a, b := twoTrees(t)
	ctx := context.Background()
	out := t.TempDir()
	for _, ro := range []bool{true, false} {
		t.Run(fmt.Sprintf("read-only=%v", ro), func(t *testing.T) {
			opts := Ext4Options{Label: "ROOT-A", UUID: testUUID, Epoch: testEpoch, ReadOnly: ro, StripeBlocks: 1024,
				Labels: map[string]string{"/usr/bin/tool": "system_u:object_r:os_t:s0", "/": "system_u:object_r:os_t:s0"}}
			imgA, imgB := filepath.Join(out, fmt.Sprintf("a-%v.ext4", ro)), filepath.Join(out, fmt.Sprintf("b-%v.ext4", ro))
			must(t, Ext4(ctx, a, imgA, 16<<20, opts))
			must(t, Ext4(ctx, b, imgB, 16<<20, opts))
			if !bytes.Equal(fileBytes(t, imgA), fileBytes(t, imgB)) {
				t.Errorf("images from two fresh copies of the same tree differ")
			}
			testkit.Run(t, "e2fsck", "-fn", imgA)
			stat := testkit.Run(t, "debugfs", "-R", `stat "/usr/bin/tool"`, imgA)
			for _, want := range []string{"User:     0   Group:     0", fmt.Sprintf("ctime: 0x%08x:00000000", testEpoch), fmt.Sprintf("mtime: 0x%08x:00000000", testEpoch), "Links: 2"} {
				if !strings.Contains(stat, want) {
					t.Errorf("stat /usr/bin/tool lacks %q:\n%s", want, stat)
				}
			}
			if stat := testkit.Run(t, "debugfs", "-R", "stat /etc/os-release", imgA); !strings.Contains(stat, "mtime: 0x5f5e1000") {
				t.Errorf("old mtime not kept:\n%s", stat)
			}
			if got := testkit.Run(t, "debugfs", "-R", `ea_get "/usr/bin/tool" security.selinux`, imgA); !strings.Contains(got, "system_u:object_r:os_t:s0") {
				t.Errorf("label missing: %q", got)
			}
		})
	}
}

func TestExt4InPlaceAtOffset(t *testing.T) {
	testkit.Tools(t, "mkfs.ext4", "e2fsck")
	a, _ := twoTrees(t)
	ctx := context.Background()
	disk := filepath.Join(t.TempDir(), "disk.img")
	pattern := bytes.Repeat([]byte{0x5A}, 1<<20)
	f, err := os.Create(disk)
	must(t, err)
	must(t, f.Truncate(32<<20))
	for _, off := range []int64{0, 17 << 20, 31 << 20} { // before, right after, at the end
		if _, err := f.WriteAt(pattern, off); err != nil {
			t.Fatal(err)
		}
	}
	must(t, f.Close())
	opts := Ext4Options{Label: "BOOT-A", UUID: testUUID, Epoch: testEpoch, ReadOnly: true, InPlace: true, Offset: 1 << 20}
	must(t, Ext4(ctx, a, disk, 16<<20, opts))
	b := fileBytes(t, disk)
	for _, off := range []int64{0, 17 << 20, 31 << 20} {
		if !bytes.Equal(b[off:off+1<<20], pattern) {
			t.Errorf("bytes at %d MiB outside the filesystem changed", off>>20)
		}
	}
	testkit.Run(t, "e2fsck", "-fn", disk+"?offset=1048576")
	// The same bytes as a standalone image.
	alone := filepath.Join(t.TempDir(), "alone.ext4")
	opts.InPlace, opts.Offset = false, 0
	must(t, Ext4(ctx, a, alone, 16<<20, opts))
	if !bytes.Equal(b[1<<20:17<<20], fileBytes(t, alone)) {
		t.Error("in-place filesystem differs from the standalone one")
	}
}

func TestExt4TooSmall(t *testing.T) {
	testkit.Tools(t, "mkfs.ext4", "resize2fs")
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "big"), bytes.Repeat([]byte("x"), 5<<20), 0o644))
	out := filepath.Join(t.TempDir(), "root.ext4")
	err := Ext4(context.Background(), src, out, 2<<20, Ext4Options{UUID: testUUID, Epoch: testEpoch, ReadOnly: true, What: "root filesystem", Target: "ROOT-A"})
	var tse *TooSmallError
	if !errors.As(err, &tse) {
		t.Fatalf("Ext4 = %v, want *TooSmallError", err)
	}
	if tse.NeedBytes <= 5<<20 || tse.HaveBytes != 2<<20 || !strings.HasPrefix(err.Error(), "root filesystem needs ") || !strings.HasSuffix(err.Error(), " but ROOT-A is 2 MiB") {
		t.Errorf("error = %q (need %d), want \"root filesystem needs N MiB but ROOT-A is 2 MiB\" with N > 5", err, tse.NeedBytes)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed build left %s behind", out)
	}
}

func TestExt4Shrink(t *testing.T) {
	testkit.Tools(t, "mkfs.ext4", "resize2fs", "e2fsck")
	a, b := twoTrees(t)
	ctx := context.Background()
	dir := t.TempDir()
	opts := Ext4Options{UUID: testUUID, Epoch: testEpoch, ReadOnly: true, Shrink: true}
	must(t, Ext4(ctx, a, filepath.Join(dir, "a"), 64<<20, opts))
	must(t, Ext4(ctx, b, filepath.Join(dir, "b"), 64<<20, opts))
	ia, ib := fileBytes(t, filepath.Join(dir, "a")), fileBytes(t, filepath.Join(dir, "b"))
	if len(ia) >= 64<<20 || !bytes.Equal(ia, ib) {
		t.Errorf("shrunk images: %d and %d bytes, equal=%v; want < 64 MiB and equal", len(ia), len(ib), bytes.Equal(ia, ib))
	}
	testkit.Run(t, "e2fsck", "-fn", filepath.Join(dir, "a"))
}

func TestExt4Empty(t *testing.T) {
	testkit.Tools(t, "mkfs.ext4", "e2fsck")
	ctx := context.Background()
	dir := t.TempDir()
	opts := Ext4Options{Label: "PRIVATE", UUID: testUUID, Epoch: testEpoch, InodeRatio: 4096, InodeSize: 256}
	must(t, Ext4Empty(ctx, filepath.Join(dir, "a"), 8<<20, opts))
	time.Sleep(1100 * time.Millisecond)
	must(t, Ext4Empty(ctx, filepath.Join(dir, "b"), 8<<20, opts))
	if !bytes.Equal(fileBytes(t, filepath.Join(dir, "a")), fileBytes(t, filepath.Join(dir, "b"))) {
		t.Error("two empty filesystems differ")
	}
	testkit.Run(t, "e2fsck", "-fn", filepath.Join(dir, "a"))
}

func TestExt4InvalidOptions(t *testing.T) {
	t.Parallel()
	err := Ext4Empty(context.Background(), filepath.Join(t.TempDir(), "x"), 1000, Ext4Options{UUID: "nope", Label: strings.Repeat("L", 17), Offset: 5, Shrink: true, InPlace: true})
	for _, want := range []string{"size: 1000", "UUID: \"nope\"", "Label:", "Shrink"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestEROFSReproducibleAndClean(t *testing.T) {
	testkit.Tools(t, "mkfs.erofs", "fsck.erofs")
	a, b := twoTrees(t)
	ctx := context.Background()
	dir := t.TempDir()
	fc := filepath.Join(dir, "file_contexts")
	must(t, os.WriteFile(fc, []byte("/.*\tsystem_u:object_r:os_t:s0\n/usr/bin(/.*)?\tsystem_u:object_r:bin_t:s0\n"), 0o644))
	for _, comp := range []string{"", "lz4hc,12"} {
		t.Run("z="+comp, func(t *testing.T) {
			opts := EROFSOptions{UUID: testUUID, Epoch: testEpoch, FileContexts: fc, Compression: comp, PclusterBytes: 262144}
			ia, ib := filepath.Join(dir, "a"+comp), filepath.Join(dir, "b"+comp)
			must(t, EROFS(ctx, a, ia, opts))
			must(t, EROFS(ctx, b, ib, opts))
			if !bytes.Equal(fileBytes(t, ia), fileBytes(t, ib)) {
				t.Error("images from two fresh copies of the same tree differ")
			}
			testkit.Run(t, "fsck.erofs", ia)
		})
	}
	err := EROFS(ctx, a, filepath.Join(dir, "small"), EROFSOptions{UUID: testUUID, Epoch: testEpoch, MaxBytes: 4096, What: "root filesystem", Target: "ROOT-A"})
	var tse *TooSmallError
	if !errors.As(err, &tse) || !strings.Contains(err.Error(), "but ROOT-A is 0 MiB") {
		t.Errorf("EROFS into 4096 bytes = %v, want *TooSmallError", err)
	}
}

func TestReplaceFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "initrd.img"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 40<<20); err != nil {
		t.Fatal(err)
	}
	const off = 4 << 20
	if err := Ext4(ctx, tree, img, 32<<20, Ext4Options{UUID: "0b5e0c53-2b0a-4bd5-9f6c-3a1f8b4a9d21", InPlace: true, Offset: off, ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceFile(ctx, img, off, "/initrd.img", []byte("new content")); err != nil {
		t.Fatal(err)
	}
	if out := testkit.Run(t, "debugfs", "-R", "cat /initrd.img", fmt.Sprintf("%s?offset=%d", img, off)); out != "new content" {
		t.Fatalf("debugfs cat /initrd.img = %q; want the new content", out)
	}
	if err := ReplaceFile(ctx, img, off, "/missing", []byte("x")); err == nil {
		t.Error("ReplaceFile of a missing file succeeded")
	}
}
