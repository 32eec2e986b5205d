package gpt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
)

// memDisk is an in-memory io.ReaderAt/io.WriterAt.
type memDisk struct{ b []byte }

func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, errors.New("read out of range")
	}
	return copy(p, m.b[off:]), nil
}

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, errors.New("write out of range")
	}
	return copy(m.b[off:], p), nil
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

func TestWriteReadRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := &memDisk{b: make([]byte, sampleSize)}
	in := sampleTable()
	if err := Write(ctx, d, sampleSize, in); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got, err := Read(ctx, d, sampleSize)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	want := sampleTable()
	want.Partitions[1], want.Partitions[2] = want.Partitions[2], want.Partitions[1] // Read returns Number order
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Read = %+v, want %+v", got, want)
	}
	// Byte-reproducible: a second write into a fresh disk gives the same bytes.
	d2 := &memDisk{b: make([]byte, sampleSize)}
	if err := Write(ctx, d2, sampleSize, sampleTable()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.b, d2.b) {
		t.Error("two writes of the same table differ")
	}
}

func TestWriteKeepsContentsAndBootCode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := &memDisk{b: bytes.Repeat([]byte{0xA5}, sampleSize)}
	if err := Write(ctx, d, sampleSize, sampleTable()); err != nil {
		t.Fatal(err)
	}
	lastTable := sampleSize - TableSectors*SectorSize
	for _, r := range [][2]int{{0, 440}, {(1 + TableSectors) * SectorSize, lastTable}} {
		for i := r[0]; i < r[1]; i++ {
			if d.b[i] != 0xA5 {
				t.Fatalf("byte %d changed to %#x; Write must only touch the MBR entries and the two tables", i, d.b[i])
			}
		}
	}
}

func TestReadNamesBadField(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	good := &memDisk{b: make([]byte, sampleSize)}
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
	for _, tt := range []struct {
		name   string
		mutate func(b []byte)
		want   string
	}{
		{"MBR signature", func(b []byte) { b[510] = 0 }, "protective MBR: Signature"},
		{"no 0xEE entry", func(b []byte) { b[446+4] = 0x83 }, "protective MBR: PartitionRecord"},
		{"primary signature", func(b []byte) { b[512] = 'X' }, "primary header: Signature"},
		{"primary header CRC", func(b []byte) { b[512+40]++ }, "primary header: HeaderCRC32"},
		{"backup header CRC", func(b []byte) { b[last+40]++ }, "backup header: HeaderCRC32"},
		{"primary entries CRC", func(b []byte) { b[2*512+60]++ }, "primary header: PartitionEntryArrayCRC32"},
		{"backup entries CRC", func(b []byte) { b[last-32*512+60]++ }, "backup header: PartitionEntryArrayCRC32"},
		{"header size", func(b []byte) { binary.LittleEndian.PutUint32(b[512+12:], 600); fixCRC(b, 512) }, "primary header: HeaderSize"},
		{"entry size", func(b []byte) { binary.LittleEndian.PutUint32(b[512+84:], 100); fixCRC(b, 512) }, "primary header: SizeOfPartitionEntry"},
		{"entry count", func(b []byte) { binary.LittleEndian.PutUint32(b[512+80:], 1<<30); fixCRC(b, 512) }, "primary header: NumberOfPartitionEntries"},
		{"my LBA", func(b []byte) { binary.LittleEndian.PutUint64(b[512+24:], 7); fixCRC(b, 512) }, "primary header: MyLBA"},
		{"alternate LBA", func(b []byte) { binary.LittleEndian.PutUint64(b[512+32:], 7); fixCRC(b, 512) }, "primary header: AlternateLBA"},
		{"entries LBA", func(b []byte) { binary.LittleEndian.PutUint64(b[512+72:], 1<<40); fixCRC(b, 512) }, "primary header: PartitionEntryLBA"},
		{"disk GUID differs", func(b []byte) { b[last+60]++; fixCRC(b, last) }, "backup header: DiskGUID"},
		{"entry outside usable", func(b []byte) {
			e := b[2*512:]
			binary.LittleEndian.PutUint64(e[40:], 1<<40)
			a := b[2*512 : 34*512]
			binary.LittleEndian.PutUint32(b[512+88:], crc32.ChecksumIEEE(a))
			fixCRC(b, 512)
		}, "primary entry 1: StartingLBA/EndingLBA"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &memDisk{b: bytes.Clone(good.b)}
			tt.mutate(d.b)
			_, err := Read(ctx, d, sampleSize)
			if err == nil {
				t.Fatalf("Read succeeded, want error naming %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Read error = %q, want one matching ErrInvalid and containing %q", err, tt.want)
			}
		})
	}
}

func TestWriteRejectsBadTable(t *testing.T) {
	t.Parallel()
	tab := sampleTable()
	tab.Partitions[1].FirstLBA = 3000 // overlaps partition 1
	tab.Partitions[2].Name = strings.Repeat("N", 37)
	tab.Partitions = append(tab.Partitions, Partition{Number: 129, Type: tab.Partitions[0].Type, FirstLBA: 20000, LastLBA: 20001})
	err := Write(context.Background(), &memDisk{b: make([]byte, sampleSize)}, sampleSize, tab)
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
	d := &memDisk{b: make([]byte, 64*SectorSize+2*TableSectors*SectorSize)}
	tab := &Table{DiskGUID: DeriveGUID(nil, "d"), Partitions: []Partition{{Number: 1, Type: DeriveGUID(nil, "t"), FirstLBA: 40, LastLBA: 50, Name: "p"}}}
	if err := Write(ctx, d, int64(len(d.b)), tab); err != nil {
		f.Fatal(err)
	}
	f.Add(d.b)
	f.Add(make([]byte, 4096))
	f.Fuzz(func(t *testing.T, b []byte) {
		size := int64(len(b)) &^ (SectorSize - 1)
		got, err := Read(ctx, &memDisk{b: b}, size)
		if err != nil {
			return
		}
		// Whatever Read accepts, Write must reproduce as a valid table.
		out := &memDisk{b: make([]byte, size)}
		if err := Write(ctx, out, size, got); err != nil {
			return // e.g. a disk read with a non-standard entry array layout
		}
		again, err := Read(ctx, out, size)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, got)
		}
	})
}
