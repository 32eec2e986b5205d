package initramfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fakeSys builds a sysfs and /dev tree for one virtio disk "vda" with
// three partitions; /dev/vda is the sgdisk image.
func fakeSys(t *testing.T, partitions int) blockDevs {
	t.Helper()
	root := t.TempDir()
	b := blockDevs{sys: filepath.Join(root, "sys"), dev: filepath.Join(root, "dev")}
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	devs := filepath.Join(b.sys, "devices/pci0000:00/virtio1/block/vda")
	write(filepath.Join(devs, "dev"), "252:0\n")
	write(filepath.Join(devs, "uevent"), "MAJOR=252\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n")
	write(filepath.Join(devs, "queue/logical_block_size"), "512\n")
	link("../../devices/pci0000:00/virtio1/block/vda", filepath.Join(b.sys, "class/block/vda"))
	link("../devices/pci0000:00/virtio1/block/vda", filepath.Join(b.sys, "block/vda"))
	for i := 1; i <= partitions; i++ {
		n := "vda" + string(rune('0'+i))
		pd := filepath.Join(devs, n)
		write(filepath.Join(pd, "dev"), "252:"+string(rune('0'+i))+"\n")
		write(filepath.Join(pd, "partition"), string(rune('0'+i))+"\n")
		write(filepath.Join(pd, "uevent"), "DEVNAME="+n+"\n")
		link("../../devices/pci0000:00/virtio1/block/vda/"+n, filepath.Join(b.sys, "class/block", n))
		link("../../devices/pci0000:00/virtio1/block/vda/"+n, filepath.Join(b.sys, "dev/block/252:"+string(rune('0'+i))))
	}
	img, err := os.ReadFile(makeGPTDisk(t))
	if err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(b.dev, "vda"), string(img))
	return b
}

func TestResolve(t *testing.T) {
	b := fakeSys(t, 3)
	for _, tt := range []struct {
		spec string
		want node
	}{
		{"PARTUUID=" + testBootGUID, node{Path: "/dev/vda1", Major: 252, Minor: 1}},
		{"PARTUUID=" + testBootGUID + "/PARTNROFF=1", node{Path: "/dev/vda2", Major: 252, Minor: 2}},
		{"PARTUUID=0B8BA6FD-0D4E-4FC2-9A37-BD9AE1F12F3C/PARTNROFF=2", node{Path: "/dev/vda3", Major: 252, Minor: 3}},
		{"PARTUUID=" + testRootGUID, node{Path: "/dev/vda2", Major: 252, Minor: 2}},
		{"252:3", node{Path: "/dev/vda3", Major: 252, Minor: 3}},
		{"PARTLABEL=PETREL-HASH-A", node{Path: "/dev/vda3", Major: 252, Minor: 3}},
		{"PARTLABEL=PETREL-BOOT-A", node{Path: "/dev/vda1", Major: 252, Minor: 1}},
	} {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := b.resolve(tt.spec)
			if err != nil {
				t.Fatalf("resolve(%q): %v", tt.spec, err)
			}
			if got != tt.want {
				t.Fatalf("resolve(%q) = %+v, want %+v", tt.spec, got, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		spec string
		want error
	}{
		{"PARTUUID=" + testBootGUID + "/PARTNROFF=3", errNotYet}, // slot 4 does not exist
		{"PARTUUID=00000000-0000-0000-0000-000000000001", errNotYet},
		{"PARTUUID=" + testBootGUID + "/PARTNROFF=x", ErrUnsupportedSpec},
		{"PARTUUID=short", ErrUnsupportedSpec},
		{"LABEL=root", ErrUnsupportedSpec},
		{"PARTLABEL=", ErrUnsupportedSpec},
		{"PARTLABEL=PETREL-ROOT-A", errNotYet}, // partition 2 has no name
		{"PARTLABEL=petrel-boot-a", errNotYet}, // names are case-sensitive
		{"/dev/nope", errNotYet},
		{"252:9", errNotYet},
	} {
		t.Run(tt.spec, func(t *testing.T) {
			if _, err := b.resolve(tt.spec); !errors.Is(err, tt.want) {
				t.Fatalf("resolve(%q) error = %v, want %v", tt.spec, err, tt.want)
			}
		})
	}
	if _, err := b.resolve("/dev/vda"); err == nil {
		t.Error("resolve(/dev/vda) accepted a regular file as a block device")
	}
}

func TestRewriteTableWaits(t *testing.T) {
	b := fakeSys(t, 2) // HASH (vda3) has not appeared yet
	params := "1 PARTUUID=" + testBootGUID + "/PARTNROFF=1 PARTUUID=" + testBootGUID + "/PARTNROFF=2 4096 4096 8 1 sha256 aa bb"
	_, err := b.rewriteTable(context.Background(), params, 100*time.Millisecond)
	if !errors.Is(err, errNotYet) {
		t.Fatalf("rewriteTable with a missing partition: %v, want a timeout wrapping errNotYet", err)
	}
	b = fakeSys(t, 3)
	got, err := b.rewriteTable(context.Background(), params, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := "1 252:2 252:3 4096 4096 8 1 sha256 aa bb"; got != want {
		t.Fatalf("rewriteTable = %q, want %q", got, want)
	}
}

func TestReadModuleList(t *testing.T) {
	got, err := readModuleList("# comment\n/lib/modules/k/a.ko\n\n/lib/modules/k/b.ko\n")
	if err != nil || len(got) != 2 || got[1] != "/lib/modules/k/b.ko" {
		t.Fatalf("readModuleList = %v, %v", got, err)
	}
	if _, err := readModuleList("a.ko\n"); err == nil {
		t.Fatal("readModuleList accepted a relative path")
	}
}
