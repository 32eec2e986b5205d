package gpt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/powercut"
)

// memDisk returns an in-memory disk holding a copy of b.
func memDisk(b []byte) *powercut.Disk { return powercut.New(b) }

// sampleDisk returns a disk of sampleSize bytes with the sample table
// written for blocks of bs bytes.
func sampleDisk(t testing.TB, bs int) *powercut.Disk {
	t.Helper()
	d := memDisk(make([]byte, sampleSize))
	if err := Write(context.Background(), d, sampleSize, sampleTableBS(bs)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return d
}

func sampleTable() *Table {
	seed := []byte("seed")
	return &Table{
		DiskGUID: DeriveGUID(seed, "disk"),
		Partitions: []Partition{
			{Number: 1, Type: MustParseGUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"), GUID: DeriveGUID(seed, "1"), FirstLBA: 2048, LastLBA: 4095, Name: "EFI-SYSTEM"},
			{Number: 3, Type: MustParseGUID("6b636168-7420-6568-2070-6c616e657421"), GUID: DeriveGUID(seed, "3"), FirstLBA: 4096, LastLBA: 8191, Attributes: 1<<48 | 1<<56, Name: "PETREL-BOOT-A"},
			{Number: 2, Type: MustParseGUID("5526016a-1a97-4ea4-b39a-b7c8c6ca4502"), GUID: DeriveGUID(seed, "2"), FirstLBA: 8192, LastLBA: 16383, Name: "ÜNICODE-ROOT"},
		},
	}
}

const sampleSize = 16 << 20

// blockSizes are the logical block sizes the package supports.
var blockSizes = []int{512, 4096}

// sampleTable returns the sample table for blocks of bs bytes: the same
// byte ranges at either size.
func sampleTableBS(bs int) *Table {
	t := sampleTable()
	t.BlockSize = bs
	for i := range t.Partitions {
		p := &t.Partitions[i]
		p.FirstLBA = p.FirstLBA * 512 / uint64(bs)
		p.LastLBA = (p.LastLBA+1)*512/uint64(bs) - 1
	}
	return t
}

// sameTable compares what Write takes from a table.
func sameTable(t *testing.T, got, want *Table) {
	t.Helper()
	if got.DiskGUID != want.DiskGUID || got.BlockSize != want.blockSize() || !reflect.DeepEqual(got.Partitions, want.Partitions) {
		t.Errorf("table = %+v, want %+v", got, want)
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, bs := range blockSizes {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			d := sampleDisk(t, bs)
			got, err := ReadBlocks(ctx, d, sampleSize, bs)
			if err != nil {
				t.Fatalf("ReadBlocks: %v", err)
			}
			want := sampleTableBS(bs)
			want.Partitions[1], want.Partitions[2] = want.Partitions[2], want.Partitions[1] // Read returns Number order
			sameTable(t, got, want)
			blocks := uint64(sampleSize / bs)
			first, last := UsableRange(blocks, bs)
			if got.LastLBA != blocks-1 || got.BackupLBA != blocks-1 || got.BackupMisplaced() || got.FirstUsableLBA != first || got.LastUsableLBA != last {
				t.Errorf("geometry = last %d backup %d usable %d..%d, want %d, %d, %d..%d",
					got.LastLBA, got.BackupLBA, got.FirstUsableLBA, got.LastUsableLBA, blocks-1, blocks-1, first, last)
			}
			if wantFirst := uint64(1 + 16384/bs + 1); first != wantFirst {
				t.Errorf("first usable LBA = %d, want %d", first, wantFirst)
			}
			// Read with the other block size finds no table.
			other := 4096
			if bs == 4096 {
				other = 512
			}
			if _, err := ReadBlocks(ctx, d, sampleSize, other); err == nil {
				t.Errorf("ReadBlocks with %d-byte blocks accepted a table written with %d-byte blocks", other, bs)
			}
			// Byte-reproducible: a second write into a fresh disk gives the same bytes.
			d2 := memDisk(make([]byte, sampleSize))
			if err := Write(ctx, d2, sampleSize, sampleTableBS(bs)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.Bytes(), d2.Bytes()) {
				t.Error("two writes of the same table differ")
			}
		})
	}
}

// TestLayout4096 checks the 4096-byte layout field by field against the
// UEFI specification; TestLoopDevice4096 checks it with sgdisk.
func TestLayout4096(t *testing.T) {
	t.Parallel()
	d := sampleDisk(t, 4096)
	last := int64(sampleSize/4096 - 1)
	for _, tt := range []struct {
		what string
		off  int64
		want []byte
	}{
		{"MBR signature", 510, []byte{0x55, 0xaa}},
		{"MBR 0xEE entry", 446 + 4, []byte{0xee}},
		{"primary header", 4096, []byte(signature)},
		{"backup header", last * 4096, []byte(signature)},
	} {
		if got := d.Bytes()[tt.off : tt.off+int64(len(tt.want))]; !bytes.Equal(got, tt.want) {
			t.Errorf("%s at byte %d = %x, want %x", tt.what, tt.off, got, tt.want)
		}
	}
	h := d.Bytes()[4096:]
	le := binary.LittleEndian
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"MyLBA", le.Uint64(h[24:]), 1},
		{"AlternateLBA", le.Uint64(h[32:]), uint64(last)},
		{"FirstUsableLBA", le.Uint64(h[40:]), 6},
		{"LastUsableLBA", le.Uint64(h[48:]), uint64(last - 5)},
		{"PartitionEntryLBA", le.Uint64(h[72:]), 2},
		{"MBR SizeInLBA", uint64(le.Uint32(d.Bytes()[446+12:])), uint64(last)},
	} {
		if f.got != f.want {
			t.Errorf("%s = %d, want %d", f.name, f.got, f.want)
		}
	}
}

// TestLoopDevice4096 writes a 4096-byte table into an image file, attaches
// it as a loop device with 4096-byte logical blocks and checks that
// DeviceBlockSize and ReadFile see 4096-byte blocks and that sgdisk (which
// takes the block size from the device) finds no problem and the same
// partitions. It needs root for the loop device.
func TestLoopDevice4096(t *testing.T) {
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "disk.img")
	d := sampleDisk(t, 4096)
	if err := os.WriteFile(img, d.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// An image file has 512-byte blocks as far as WriteFile knows.
	if err := WriteFile(ctx, img, sampleTableBS(4096)); err == nil || !strings.Contains(err.Error(), "table has 4096-byte blocks, the disk 512-byte ones") {
		t.Errorf("WriteFile of a 4096-byte table into an image file: %v, want a block size mismatch", err)
	}
	if f, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0); err != nil {
		t.Fatalf("open /dev/loop-control (this test needs root for loop devices): %v", err)
	} else {
		f.Close()
	}
	out, err := exec.Command("losetup", "--find", "--show", "--sector-size", "4096", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v\n%s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", loop).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v\n%s", loop, err, out)
		}
	})
	f, err := os.Open(loop)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if bs, err := DeviceBlockSize(f); err != nil || bs != 4096 {
		t.Fatalf("DeviceBlockSize(%s) = %d, %v; want 4096", loop, bs, err)
	}
	got, err := ReadFile(ctx, loop)
	if err != nil {
		t.Fatalf("ReadFile(%s): %v", loop, err)
	}
	want := sampleTableBS(4096)
	want.Partitions[1], want.Partitions[2] = want.Partitions[2], want.Partitions[1]
	sameTable(t, got, want)
	out, err = exec.Command("sgdisk", "-v", loop).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") {
		t.Errorf("sgdisk -v %s: %v\n%s", loop, err, out)
	}
	out, err = exec.Command("sgdisk", "-i", "2", loop).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "First sector: 1024 (at 4.0 MiB)") || !strings.Contains(string(out), "Last sector: 2047 (at 8.0 MiB)") {
		t.Errorf("sgdisk -i 2 %s: %v; want partition 2 at sectors 1024..2047 of 4096 bytes\n%s", loop, err, out)
	}
}

func TestWriteKeepsContentsAndBootCode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, bs := range blockSizes {
		d := memDisk(bytes.Repeat([]byte{0xA5}, sampleSize))
		if err := Write(ctx, d, sampleSize, sampleTableBS(bs)); err != nil {
			t.Fatal(err)
		}
		table := int(tableBlocks(bs)) * bs
		for _, r := range [][2]int{{0, 440}, {512, bs}, {bs + table, sampleSize - table}} {
			for i := r[0]; i < r[1]; i++ {
				if d.Bytes()[i] != 0xA5 {
					t.Fatalf("block size %d: byte %d changed to %#x; Write must only touch the MBR entries and the two tables", bs, i, d.Bytes()[i])
				}
			}
		}
	}
}

func TestReadNamesBadField(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	good := memDisk(make([]byte, sampleSize))
	if err := Write(ctx, good, sampleSize, sampleTable()); err != nil {
		t.Fatal(err)
	}
	last := int64(sampleSize - SectorSize)
	// fixCRC recomputes the header CRC of the header at off so that only
	// the intended field is wrong.
	fixCRC := func(b []byte, off int64) {
		h := b[off : off+HeaderSize]
		binary.LittleEndian.PutUint32(h[16:], 0)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
	}
	// used is the copy Read falls back to ("" when none is usable).
	for _, tt := range []struct {
		name   string
		mutate func(b []byte)
		want   string
		used   string
	}{
		{"MBR signature", func(b []byte) { b[510] = 0 }, "protective MBR: Signature", ""},
		{"no 0xEE entry", func(b []byte) { b[446+4] = 0x83 }, "protective MBR: PartitionRecord", ""},
		{"primary signature", func(b []byte) { b[512] = 'X' }, "primary header: Signature", "backup"},
		{"primary header CRC", func(b []byte) { b[512+40]++ }, "primary header: HeaderCRC32", "backup"},
		{"backup header CRC", func(b []byte) { b[last+40]++ }, "backup header: HeaderCRC32", "primary"},
		{"primary entries CRC", func(b []byte) { b[2*512+60]++ }, "primary header: PartitionEntryArrayCRC32", "backup"},
		{"backup entries CRC", func(b []byte) { b[last-32*512+60]++ }, "backup header: PartitionEntryArrayCRC32", "primary"},
		{"both headers", func(b []byte) { b[512+40]++; b[last+40]++ }, "backup header: HeaderCRC32", ""},
		{"header size", func(b []byte) { binary.LittleEndian.PutUint32(b[512+12:], 600); fixCRC(b, 512) }, "primary header: HeaderSize", "backup"},
		{"entry size", func(b []byte) { binary.LittleEndian.PutUint32(b[512+84:], 100); fixCRC(b, 512) }, "primary header: SizeOfPartitionEntry", "backup"},
		{"entry count", func(b []byte) { binary.LittleEndian.PutUint32(b[512+80:], 1<<30); fixCRC(b, 512) }, "primary header: NumberOfPartitionEntries", "backup"},
		{"my LBA", func(b []byte) { binary.LittleEndian.PutUint64(b[512+24:], 7); fixCRC(b, 512) }, "primary header: MyLBA", "backup"},
		{"alternate LBA too small", func(b []byte) { binary.LittleEndian.PutUint64(b[512+32:], 7); fixCRC(b, 512) }, "primary header: AlternateLBA", "backup"},
		{"alternate LBA beyond the disk", func(b []byte) { binary.LittleEndian.PutUint64(b[512+32:], sampleSize/512); fixCRC(b, 512) }, "primary header: AlternateLBA: 32768, beyond the disk's last LBA 32767", "backup"},
		{"alternate LBA not a backup", func(b []byte) { binary.LittleEndian.PutUint64(b[512+32:], sampleSize/512-2); fixCRC(b, 512) }, "backup header: Signature", "primary"},
		{"backup alternate LBA", func(b []byte) { binary.LittleEndian.PutUint64(b[last+32:], 2); fixCRC(b, last) }, "backup header: AlternateLBA: 2, want 1", "primary"},
		{"entries LBA", func(b []byte) { binary.LittleEndian.PutUint64(b[512+72:], 1<<40); fixCRC(b, 512) }, "primary header: PartitionEntryLBA", "backup"},
		{"disk GUID differs", func(b []byte) { b[last+60]++; fixCRC(b, last) }, "backup header: DiskGUID", "primary"},
		{"entry outside usable", func(b []byte) {
			e := b[2*512:]
			binary.LittleEndian.PutUint64(e[40:], 1<<40)
			a := b[2*512 : 34*512]
			binary.LittleEndian.PutUint32(b[512+88:], crc32.ChecksumIEEE(a))
			fixCRC(b, 512)
		}, "primary entry 1: StartingLBA/EndingLBA", "backup"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := memDisk(bytes.Clone(good.Bytes()))
			tt.mutate(d.Bytes())
			_, err := Read(ctx, d, sampleSize)
			if err == nil {
				t.Fatalf("Read succeeded, want error naming %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Read error = %q, want one matching ErrInvalid and containing %q", err, tt.want)
			}
			var one *OneCopyError
			switch {
			case !errors.As(err, &one):
				if tt.used != "" {
					t.Errorf("Read error %q is no *OneCopyError, want the %s copy offered", err, tt.used)
				}
			case one.Used != tt.used:
				t.Errorf("Read offers the %s copy, want %q", one.Used, tt.used)
			default:
				want := sampleTable()
				want.Partitions[1], want.Partitions[2] = want.Partitions[2], want.Partitions[1]
				sameTable(t, one.Table, want)
			}
		})
	}
}

// growDisk returns a copy of d's bytes extended by extra zero bytes: the
// image written to a larger disk.
func growDisk(d *powercut.Disk, extra int) *powercut.Disk {
	return memDisk(append(bytes.Clone(d.Bytes()), make([]byte, extra)...))
}

func TestReadLargerDisk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, bs := range blockSizes {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			d := sampleDisk(t, bs)
			big := growDisk(d, 4<<20)
			size := int64(len(big.Bytes()))
			got, err := ReadBlocks(ctx, big, size, bs)
			if err != nil {
				t.Fatalf("ReadBlocks of the image on a larger disk: %v", err)
			}
			oldLast, newLast := uint64(sampleSize/bs-1), uint64(size)/uint64(bs)-1
			if !got.BackupMisplaced() || got.BackupLBA != oldLast || got.LastLBA != newLast {
				t.Errorf("backup at %d of last %d (misplaced %v), want %d of %d", got.BackupLBA, got.LastLBA, got.BackupMisplaced(), oldLast, newLast)
			}
			if _, last := UsableRange(oldLast+1, bs); got.LastUsableLBA != last {
				t.Errorf("last usable LBA = %d, want %d (as written)", got.LastUsableLBA, last)
			}
			// Writing it back relocates the backup to the end.
			if err := Write(ctx, big, size, got); err != nil {
				t.Fatal(err)
			}
			again, err := ReadBlocks(ctx, big, size, bs)
			if err != nil || again.BackupMisplaced() || again.BackupLBA != newLast {
				t.Fatalf("after Write: %+v, %v; want the backup at %d", again, err, newLast)
			}
			// The image on a smaller disk is refused.
			small := memDisk(big.Bytes()[:sampleSize-bs*8])
			_, err = ReadBlocks(ctx, small, int64(len(small.Bytes())), bs)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "the disk is smaller than the table") {
				t.Errorf("ReadBlocks on a smaller disk: %v, want an AlternateLBA error", err)
			}
		})
	}
}

// TestWriteCrashSafe rewrites a table on a larger disk (relocating the
// backup and growing the last partition, in one Write) and replays a power
// cut at every point: Read must always offer either the old or the new
// table, never nothing and never a mix.
func TestWriteCrashSafe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, bs := range blockSizes {
		for _, extra := range []int{bs * 3, 4 << 20} { // overlapping and separate backup locations
			t.Run(fmt.Sprintf("%d/+%d", bs, extra), func(t *testing.T) {
				d := sampleDisk(t, bs)
				old := sampleTableBS(bs)
				big := growDisk(d, extra)
				size := int64(len(big.Bytes()))
				grown, err := ReadBlocks(ctx, big, size, bs)
				if err != nil {
					t.Fatal(err)
				}
				// Partition 2 (index 1 in Number order) is the last one on the disk.
				_, grown.Partitions[1].LastLBA = UsableRange(uint64(size)/uint64(bs), bs)
				c := powercut.New(big.Bytes())
				if err := Write(ctx, c, size, grown); err != nil {
					t.Fatal(err)
				}
				lastOld, lastNew := old.Partitions[2].LastLBA, grown.Partitions[1].LastLBA
				if c.Syncs() != 2 {
					t.Fatalf("Write synced %d times, want 2 (after the backup, at the end)", c.Syncs())
				}
				for _, ct := range c.States() {
					tab, err := ReadBlocks(ctx, memDisk(ct.Bytes), size, bs)
					var one *OneCopyError
					if errors.As(err, &one) {
						tab, err = one.Table, nil
					}
					if err != nil {
						t.Errorf("%s: no usable table: %v", ct.Name, err)
						continue
					}
					// Before the barrier the old primary rules; once a
					// primary write lands, the complete new backup does.
					want := lastOld
					if ct.Epoch == 2 || ct.Epoch == 1 && ct.Pending > 0 {
						want = lastNew
					}
					if p, _ := tab.Partition(2); p.LastLBA != want {
						t.Errorf("%s: partition 2 ends at %d, want %d (old %d, new %d)", ct.Name, p.LastLBA, want, lastOld, lastNew)
					}
				}
				if final, err := ReadBlocks(ctx, c, size, bs); err != nil || final.BackupMisplaced() {
					t.Errorf("after the whole write: %+v, %v; want a clean table with the backup at the end", final, err)
				}
			})
		}
	}
}

func TestWriteRejectsBadTable(t *testing.T) {
	t.Parallel()
	tab := sampleTable()
	tab.Partitions[1].FirstLBA = 3000 // overlaps partition 1
	tab.Partitions[2].Name = strings.Repeat("N", 37)
	tab.Partitions = append(tab.Partitions, Partition{Number: 129, Type: tab.Partitions[0].Type, FirstLBA: 20000, LastLBA: 20001})
	err := Write(context.Background(), memDisk(make([]byte, sampleSize)), sampleSize, tab)
	for _, want := range []string{"overlaps partition 1", "37 UTF-16 units", "number must be 1..128"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Write error = %v, want it to contain %q", err, want)
		}
	}
}

func TestGUID(t *testing.T) {
	t.Parallel()
	const s = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	g := MustParseGUID(strings.ToUpper(s))
	if g.String() != s {
		t.Errorf("String() = %s, want %s", g, s)
	}
	// The on-disk form of the EFI system type, as in the UEFI specification.
	want := []byte{0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b}
	if enc := g.encode(); !bytes.Equal(enc[:], want) || decodeGUID(want) != g {
		t.Errorf("encode = %x, want %x", enc, want)
	}
	if _, err := ParseGUID("c12a7328f81f11d2ba4b00a0c93ec93b"); err == nil {
		t.Error("ParseGUID without dashes succeeded")
	}
	if DeriveGUID([]byte("a"), "x") == DeriveGUID([]byte("a"), "y") || DeriveGUID([]byte("a"), "x") != DeriveGUID([]byte("a"), "x") {
		t.Error("DeriveGUID is not a deterministic function of seed and name")
	}
}

func FuzzReadGPT(f *testing.F) {
	ctx := context.Background()
	for _, bs := range blockSizes {
		// Small disks: the fuzzer slows down a lot on inputs of 100s of KiB.
		d := memDisk(make([]byte, int(minDiskBlocks(bs)+2)*bs))
		first, last := UsableRange(minDiskBlocks(bs)+2, bs)
		tab := &Table{BlockSize: bs, DiskGUID: DeriveGUID(nil, "d"), Partitions: []Partition{{Number: 1, Type: DeriveGUID(nil, "t"), FirstLBA: first, LastLBA: last, Name: "p"}}}
		if err := Write(ctx, d, int64(len(d.Bytes())), tab); err != nil {
			f.Fatal(err)
		}
		f.Add(d.Bytes(), bs == 4096)
		f.Add(growDisk(d, 2*bs).Bytes(), bs == 4096) // the image on a larger disk
	}
	f.Add(make([]byte, 4096), false)
	f.Fuzz(func(t *testing.T, b []byte, big bool) {
		bs := 512
		if big {
			bs = 4096
		}
		size := int64(len(b)) &^ int64(bs-1)
		got, err := ReadBlocks(ctx, memDisk(b), size, bs)
		var one *OneCopyError
		if errors.As(err, &one) {
			got, err = one.Table, nil
		}
		if err != nil {
			return
		}
		if got.BlockSize != bs || got.BackupLBA > got.LastLBA || got.LastUsableLBA >= got.BackupLBA {
			t.Fatalf("ReadBlocks accepted geometry %+v", got)
		}
		// Whatever Read accepts, Write must reproduce as a valid table.
		out := memDisk(make([]byte, size))
		if err := Write(ctx, out, size, got); err != nil {
			return // e.g. a disk read with a non-standard entry array layout
		}
		again, err := ReadBlocks(ctx, out, size, bs)
		if err != nil || again.BackupMisplaced() || again.DiskGUID != got.DiskGUID || !reflect.DeepEqual(again.Partitions, got.Partitions) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, got)
		}
	})
}
