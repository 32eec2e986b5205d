package initramfs

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
	"time"

	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/powercut"
)

const (
	testBootGUID = "0b8ba6fd-0d4e-4fc2-9a37-bd9ae1f12f3c"
	testRootGUID = "1C4E8F0A-6A55-4B7F-8D9E-1D2C3B4A5F60"
	testHashGUID = "2d5f901b-7b66-4c80-9eaf-2e3d4c5b6a71"
	testDataGUID = "5b94e8df-28b8-485c-9d19-362263b5944c"
)

// makeGPTDisk lays out a 4 MiB disk with sgdisk: BOOT, ROOT, HASH.
func makeGPTDisk(t testing.TB) []byte {
	t.Helper()
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
		t.Fatalf("sgdisk (Debian package gdisk): %v\n%s", err, out)
	}
	img, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// gptImage returns a disk image of size bytes whose GPT holds parts.
func gptImage(t testing.TB, size int64, parts ...gpt.Partition) []byte {
	t.Helper()
	d := powercut.New(make([]byte, size))
	tab := &gpt.Table{DiskGUID: gpt.DeriveGUID([]byte(t.Name()), "disk"), Partitions: parts}
	if err := gpt.Write(context.Background(), d, size, tab); err != nil {
		t.Fatal(err)
	}
	return d.Bytes()
}

// dataPart is a DATA partition with the fixed preferred GUID.
func dataPart(number int, first, last uint64) gpt.Partition {
	return gpt.Partition{Number: number, Type: gpt.MustParseGUID("626f7474-6c65-6474-6861-726d61726b73"),
		GUID: gpt.MustParseGUID(testDataGUID), FirstLBA: first, LastLBA: last}
}

// fakeDisk is one disk of a fake sysfs: its kernel name, major number,
// image and how many of its partitions the kernel has created.
type fakeDisk struct {
	name  string
	major int
	img   []byte
	parts int
}

// fakeSys builds a sysfs and /dev tree for one virtio disk "vda" with
// the sgdisk layout; /dev/vda is the image.
func fakeSys(t *testing.T, partitions int) blockDevs {
	t.Helper()
	return fakeTree(t, fakeDisk{"vda", 252, makeGPTDisk(t), partitions})
}

// fakeTree builds a sysfs and /dev tree for the given disks: a device
// directory with dev, uevent and partition files, the class/block,
// block and dev/block links, and the image as the /dev node.
func fakeTree(t *testing.T, disks ...fakeDisk) blockDevs {
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
	for i, d := range disks {
		rel := fmt.Sprintf("devices/pci0000:00/virtio%d/block/%s", i+1, d.name)
		devs := filepath.Join(b.sys, rel)
		write(filepath.Join(devs, "dev"), fmt.Sprintf("%d:0\n", d.major))
		write(filepath.Join(devs, "size"), fmt.Sprintf("%d\n", len(d.img)/512))
		write(filepath.Join(devs, "uevent"), fmt.Sprintf("MAJOR=%d\nMINOR=0\nDEVNAME=%s\nDEVTYPE=disk\n", d.major, d.name))
		link("../../"+rel, filepath.Join(b.sys, "class/block", d.name))
		link("../"+rel, filepath.Join(b.sys, "block", d.name))
		link("../../"+rel, filepath.Join(b.sys, "dev/block", fmt.Sprintf("%d:0", d.major)))
		for n := 1; n <= d.parts; n++ {
			pn := fmt.Sprintf("%s%d", d.name, n)
			pd := filepath.Join(devs, pn)
			write(filepath.Join(pd, "dev"), fmt.Sprintf("%d:%d\n", d.major, n))
			write(filepath.Join(pd, "partition"), fmt.Sprintf("%d\n", n))
			write(filepath.Join(pd, "uevent"), "DEVNAME="+pn+"\n")
			link("../../"+rel+"/"+pn, filepath.Join(b.sys, "class/block", pn))
			link("../../"+rel+"/"+pn, filepath.Join(b.sys, "dev/block", fmt.Sprintf("%d:%d", d.major, n)))
		}
		write(filepath.Join(b.dev, d.name), string(d.img))
	}
	return b
}

func TestResolve(t *testing.T) {
	b := fakeSys(t, 3)
	for _, tt := range []struct {
		spec string
		want node
	}{
		{"PARTUUID=" + testBootGUID, node{Path: "/dev/vda1", Major: 252, Minor: 1, Disk: "vda"}},
		{"PARTUUID=" + testBootGUID + "/PARTNROFF=1", node{Path: "/dev/vda2", Major: 252, Minor: 2, Disk: "vda"}},
		{"PARTUUID=0B8BA6FD-0D4E-4FC2-9A37-BD9AE1F12F3C/PARTNROFF=2", node{Path: "/dev/vda3", Major: 252, Minor: 3, Disk: "vda"}},
		{"PARTUUID=" + testRootGUID, node{Path: "/dev/vda2", Major: 252, Minor: 2, Disk: "vda"}},
		{"252:3", node{Path: "/dev/vda3", Major: 252, Minor: 3, Disk: "vda"}},
		{"PARTLABEL=PETREL-HASH-A", node{Path: "/dev/vda3", Major: 252, Minor: 3, Disk: "vda"}},
		{"PARTLABEL=PETREL-BOOT-A", node{Path: "/dev/vda1", Major: 252, Minor: 1, Disk: "vda"}},
	} {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := b.resolve(context.Background(), tt.spec)
			if err != nil {
				t.Fatalf("resolve(%q): %v", tt.spec, err)
			}
			got.Part = nil
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
			if _, err := b.resolve(context.Background(), tt.spec); !errors.Is(err, tt.want) {
				t.Fatalf("resolve(%q) error = %v, want %v", tt.spec, err, tt.want)
			}
		})
	}
	if _, err := b.resolve(context.Background(), "/dev/vda"); err == nil {
		t.Error("resolve(/dev/vda) accepted a regular file as a block device")
	}
}

// TestResolveScope checks the rule that picks one partition when several
// disks carry the same GUID or name: the boot disk first, else exactly one
// of the others.
func TestResolveScope(t *testing.T) {
	const mib = 2048
	data := "PARTUUID=" + testDataGUID
	base := makeGPTDisk(t) // sgdisk takes a second
	sgdiskDisk := func() []byte { return bytes.Clone(base) }
	bootWithData := func() []byte {
		d := powercut.New(sgdiskDisk())
		img := d.Bytes()
		tab, err := gpt.Read(context.Background(), d, int64(len(img)))
		if err != nil {
			t.Fatal(err)
		}
		tab.Partitions = append(tab.Partitions, dataPart(4, 7168, 8000))
		if err := gpt.Write(context.Background(), d, int64(len(img)), tab); err != nil {
			t.Fatal(err)
		}
		return d.Bytes()
	}
	second := func() []byte { return gptImage(t, 4<<20, dataPart(1, mib, 2*mib)) }
	for _, tt := range []struct {
		name     string
		disks    []fakeDisk
		bootDisk string
		spec     string
		want     string // device path, or the error text
	}{
		{"boot disk first", []fakeDisk{{"vda", 252, bootWithData(), 4}, {"vdb", 253, second(), 1}}, "vda", data, "/dev/vda4"},
		{"boot disk first, the other named first", []fakeDisk{{"vda", 252, second(), 1}, {"vdb", 253, bootWithData(), 4}}, "vdb", data, "/dev/vdb4"},
		{"not on the boot disk, one other", []fakeDisk{{"vda", 252, sgdiskDisk(), 3}, {"vdb", 253, second(), 1}}, "vda", data, "/dev/vdb1"},
		{"not on the boot disk, two others", []fakeDisk{{"vda", 252, sgdiskDisk(), 3}, {"vdb", 253, second(), 1}, {"vdc", 254, second(), 1}}, "vda", data,
			`"PARTUUID=` + testDataGUID + `" matches on the disks other than the boot disk vda /dev/vdb1 and /dev/vdc1; it must name exactly one partition`},
		{"twice on the boot disk", []fakeDisk{{"vda", 252, gptImage(t, 4<<20, dataPart(1, mib, 2*mib-1), dataPart(2, 2*mib, 3*mib)), 2}}, "vda", data,
			"matches on the boot disk vda /dev/vda1 and /dev/vda2"},
		{"boot disk not known yet", []fakeDisk{{"vda", 252, bootWithData(), 4}, {"vdb", 253, second(), 1}}, "", data,
			"matches on the disks /dev/vda4 and /dev/vdb1"},
		{"label on two disks", []fakeDisk{{"vda", 252, sgdiskDisk(), 3}, {"vdb", 253, sgdiskDisk(), 3}}, "", "PARTLABEL=PETREL-HASH-A",
			"matches on the disks /dev/vda3 and /dev/vdb3"},
		{"verity table on the boot disk", []fakeDisk{{"vda", 252, sgdiskDisk(), 3}, {"vdb", 253, sgdiskDisk(), 3}}, "vdb", "PARTUUID=" + testBootGUID + "/PARTNROFF=1", "/dev/vdb2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := fakeTree(t, tt.disks...).withBootDisk(tt.bootDisk)
			n, err := b.resolve(context.Background(), tt.spec)
			if strings.HasPrefix(tt.want, "/dev/") {
				if err != nil || n.Path != tt.want {
					t.Fatalf("resolve(%q) = %+v, %v; want %s", tt.spec, n, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("resolve(%q) error = %v, want ErrAmbiguous with %q", tt.spec, err, tt.want)
			}
		})
	}
}

func TestRewriteTableWaits(t *testing.T) {
	b := fakeSys(t, 2) // HASH (vda3) has not appeared yet
	params := "1 PARTUUID=" + testBootGUID + "/PARTNROFF=1 PARTUUID=" + testBootGUID + "/PARTNROFF=2 4096 4096 8 1 sha256 aa bb"
	_, _, err := b.rewriteTable(context.Background(), params, 100*time.Millisecond)
	if !errors.Is(err, errNotYet) {
		t.Fatalf("rewriteTable with a missing partition: %v, want a timeout wrapping errNotYet", err)
	}
	b = fakeSys(t, 3)
	got, disks, err := b.rewriteTable(context.Background(), params, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := "1 252:2 252:3 4096 4096 8 1 sha256 aa bb"; got != want || strings.Join(disks, " ") != "vda vda" {
		t.Fatalf("rewriteTable = %q on disks %q, want %q on vda vda", got, disks, want)
	}
}
