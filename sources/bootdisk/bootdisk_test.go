package bootdisk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/gpt"
)

const (
	uuidA = "11111111-2222-3333-4444-555555555501"
	uuidB = "11111111-2222-3333-4444-555555555502"
)

func verityCmdline(uuid string) string {
	return `console=ttyS0 root=/dev/dm-0 "dm-mod.create=root,,,ro,0 8 verity 1 PARTUUID=` + uuid + `/PARTNROFF=1 PARTUUID=` + uuid + `/PARTNROFF=2 4096 4096 1 1 sha256 00 00" -- x` + "\n"
}

func TestBootPartUUID(t *testing.T) {
	table := `dm-mod.create="root,,,ro,0 800 verity 1 PARTUUID=` + strings.ToUpper(uuidB) + `/PARTNROFF=1 PARTUUID=` + uuidB + `/PARTNROFF=2 4096 4096 100 1 sha256 ab cd"`
	tests := []struct {
		name, cmdline string
		want          string
		err           error
	}{
		{"grub table", "BOOT_IMAGE=/vmlinuz console=ttyS0 " + table + " -- systemd.show_status=true", uuidB, nil},
		{"root= PARTUUID alone is not the table", "root=PARTUUID=" + uuidA + " " + table, uuidB, nil},
		{"no table", "console=ttyS0 root=/dev/vda4", "", ErrNoBootUUID},
		{"plain PARTUUID only", "root=PARTUUID=" + uuidA, "", ErrNoBootUUID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BootPartUUID(tt.cmdline)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err == nil && got != gpt.MustParseGUID(tt.want) {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestBankOf(t *testing.T) {
	u := gpt.MustParseGUID
	third, root := "00000000-0000-0000-0000-000000000003", "00000000-0000-0000-0000-000000000009"
	tab := &gpt.Table{Partitions: []gpt.Partition{
		{Number: 1, Type: disklayout.TypeBoot, GUID: u(uuidA)},
		{Number: 2, Type: disklayout.TypeRoot, GUID: u(root)},
		{Number: 3, Type: disklayout.TypeBoot, GUID: u(uuidB)},
		{Number: 4, Type: disklayout.TypeBoot, GUID: u(third)},
	}}
	tests := []struct {
		name, uuid string
		want       bootstate.Bank
		err        error
	}{
		{"first BOOT is A", uuidA, bootstate.BankA, nil},
		{"second BOOT is B", uuidB, bootstate.BankB, nil},
		{"third BOOT", third, 0, ErrBankUnknown},
		{"ROOT partition", root, 0, ErrBankUnknown},
		{"absent", "99999999-0000-0000-0000-000000000000", 0, ErrBankUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BankOf(tab, u(tt.uuid))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err == nil && got != tt.want {
				t.Errorf("bank = %s, want %s", got, tt.want)
			}
		})
	}
}

// writeDisk writes a 4 MiB disk image file with a GPT holding an ESP and
// the two BOOT partitions.
func writeDisk(t *testing.T, path string) {
	t.Helper()
	const size = 4 << 20
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	seed := []byte("bootdisk")
	tab := &gpt.Table{DiskGUID: gpt.DeriveGUID(seed, "disk"), Partitions: []gpt.Partition{
		{Number: 1, Type: disklayout.TypeEFISystem, GUID: gpt.DeriveGUID(seed, "esp"), FirstLBA: 2048, LastLBA: 4095, Name: "EFI-SYSTEM"},
		{Number: 2, Type: disklayout.TypeBoot, GUID: gpt.MustParseGUID(uuidA), FirstLBA: 4096, LastLBA: 5119, Name: "PETREL-BOOT-A"},
		{Number: 3, Type: disklayout.TypeBoot, GUID: gpt.MustParseGUID(uuidB), FirstLBA: 5120, LastLBA: 6143, Name: "PETREL-BOOT-B"},
	}}
	if err := gpt.WriteFile(context.Background(), path, tab); err != nil {
		t.Fatal(err)
	}
}

// fakeHost lays out a sysfs block directory and a dev directory: vda is a
// GPT disk image, vda1 its partition, loop0 and dm-0 virtual devices, vdb a
// blank disk, vdc a disk without a device node and vdd an empty one.
func fakeHost(t *testing.T) (sys, dev string) {
	t.Helper()
	root := t.TempDir()
	sys, dev = filepath.Join(root, "sys"), filepath.Join(root, "dev")
	for _, d := range []string{"vda", "vda1", "vdb", "vdc", "vdd", "loop0", "dm-0"} {
		if err := os.MkdirAll(filepath.Join(sys, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	writeDisk(t, filepath.Join(dev, "vda"))
	for name, content := range map[string]string{
		"sys/vda1/partition": "1\n",
		"dev/vdb":            strings.Repeat("\x00", 2048*512),
		"dev/vdd":            "",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The virtual devices point at the GPT disk: Scan must skip them anyway.
	for _, name := range []string{"loop0", "dm-0", "vda1"} {
		if err := os.Symlink(filepath.Join(dev, "vda"), filepath.Join(dev, name)); err != nil {
			t.Fatal(err)
		}
	}
	return sys, dev
}

func TestScan(t *testing.T) {
	sys, dev := fakeHost(t)
	disks, err := Scan(context.Background(), sys, dev)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range disks {
		names = append(names, filepath.Base(d.Path))
	}
	if got, want := strings.Join(names, " "), "vda vdb vdc vdd"; got != want {
		t.Fatalf("disks = %s, want %s", got, want)
	}
	vda := disks[0]
	if vda.Err != nil || vda.Path != filepath.Join(dev, "vda") {
		t.Fatalf("vda = %+v, want its GPT", vda)
	}
	if b, err := BankOf(vda.Table, gpt.MustParseGUID(uuidB)); err != nil || b != bootstate.BankB {
		t.Errorf("BankOf(vda, B) = %v, %v; want B", b, err)
	}
	for _, tt := range []struct {
		disk Disk
		want string // substring of Err
		is   error
	}{
		{disks[1], "read GPT of \"" + filepath.Join(dev, "vdb") + "\": protective MBR: Signature", gpt.ErrInvalid},
		{disks[2], "read GPT of \"" + filepath.Join(dev, "vdc") + "\": open", os.ErrNotExist},
		{disks[3], "read GPT of \"" + filepath.Join(dev, "vdd") + "\": disk: size: 0 bytes", gpt.ErrInvalid},
	} {
		t.Run(filepath.Base(tt.disk.Path), func(t *testing.T) {
			if tt.disk.Table != nil || tt.disk.Err == nil || !strings.Contains(tt.disk.Err.Error(), tt.want) || !errors.Is(tt.disk.Err, tt.is) {
				t.Errorf("%s: table %v, err %v; want no table and an error with %q wrapping %v", tt.disk.Path, tt.disk.Table, tt.disk.Err, tt.want, tt.is)
			}
		})
	}
}

// TestScanLargerDisk reads the image written to a larger disk: the table
// is accepted and says that its backup is not at the end yet.
func TestScanLargerDisk(t *testing.T) {
	sys, dev := fakeHost(t)
	if err := os.Truncate(filepath.Join(dev, "vda"), 64<<20); err != nil {
		t.Fatal(err)
	}
	disks, err := Scan(context.Background(), sys, dev)
	if err != nil {
		t.Fatal(err)
	}
	vda := disks[0]
	if vda.Err != nil {
		t.Fatalf("Scan of the image on a larger disk: %v", vda.Err)
	}
	if !vda.Table.BackupMisplaced() || vda.Table.LastLBA != 64<<20/512-1 || vda.Table.BackupLBA != 4<<20/512-1 {
		t.Errorf("table of the grown disk: last LBA %d, backup at %d; want %d and %d", vda.Table.LastLBA, vda.Table.BackupLBA, 64<<20/512-1, 4<<20/512-1)
	}
	if b, err := BankOf(vda.Table, gpt.MustParseGUID(uuidA)); err != nil || b != bootstate.BankA {
		t.Errorf("BankOf(vda, A) = %v, %v; want A", b, err)
	}
}

func TestScanErrors(t *testing.T) {
	sys, dev := fakeHost(t)
	if _, err := Scan(context.Background(), filepath.Join(sys, "none"), dev); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "list block devices") {
		t.Errorf("missing sysfs dir: err = %v, want a list error wrapping ErrNotExist", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if disks, err := Scan(ctx, sys, dev); !errors.Is(err, context.Canceled) || disks != nil {
		t.Errorf("cancelled: %v, %v; want no disks and context.Canceled", disks, err)
	}
}

func FuzzBootPartUUID(f *testing.F) {
	f.Add(verityCmdline(uuidA))
	f.Add("PARTUUID=x/PARTNROFF=1")
	f.Fuzz(func(t *testing.T, s string) {
		g, err := BootPartUUID(s)
		if err != nil {
			return
		}
		if !strings.Contains(strings.ToLower(s), g.String()+"/partnroff=") {
			t.Fatalf("GUID %s not in %q", g, s)
		}
	})
}
