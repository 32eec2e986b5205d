package vmdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

// sparseImage writes a sparse raw image of size bytes with data scattered
// through it: the first and last sectors, a partial grain, a run across a
// grain-table boundary (32 MiB), random and compressible blocks.
func sparseImage(t testing.TB, path string, size int64, seed uint64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	text := bytes.Repeat([]byte("petrel streamOptimized grain "), 4096)
	writes := []struct {
		off  int64
		data []byte
	}{
		{0, random(512)},
		{4096, text[:10000]},
		{GrainBytes*3 + 100, random(7)},
		{32<<20 - 70000, random(140000)}, // crosses the first grain-table span
		{size - 512, random(512)},        // last sector
	}
	for i := range 40 {
		off := rng.Int64N(size-(1<<20)) &^ 511
		if i%2 == 0 {
			writes = append(writes, struct {
				off  int64
				data []byte
			}{off, random(1 + rng.IntN(300000))})
		} else {
			writes = append(writes, struct {
				off  int64
				data []byte
			}{off, text[:1+rng.IntN(len(text)-1)]})
		}
	}
	for _, w := range writes {
		if _, err := f.WriteAt(w.data, w.off); err != nil {
			t.Fatal(err)
		}
	}
}

func convertFile(t testing.TB, raw, out string, opts Options) {
	t.Helper()
	if err := ConvertFile(context.Background(), raw, out, opts); err != nil {
		t.Fatalf("ConvertFile(%q): %v", raw, err)
	}
}

func sameFiles(t testing.TB, a, b string) {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); ; off += int64(len(ba)) {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			for i := range min(na, nb) {
				if ba[i] != bb[i] {
					t.Fatalf("%s and %s differ at byte %d", a, b, off+int64(i))
				}
			}
			t.Fatalf("%s is %d bytes, %s is %d bytes", a, off+int64(na), b, off+int64(nb))
		}
		if ea != nil || eb != nil {
			return
		}
	}
}

type qemuInfo struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
	Specific    struct {
		Type string `json:"type"`
		Data struct {
			CreateType string `json:"create-type"`
			CID        uint32 `json:"cid"`
			Extents    []struct {
				Compressed bool `json:"compressed"`
				ClusterSz  int  `json:"cluster-size"`
			} `json:"extents"`
		} `json:"data"`
	} `json:"format-specific"`
}

func TestConvertQemuRoundTrip(t *testing.T) {
	testkit.Tool(t, "qemu-img")
	t.Parallel()
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		size int64
		data bool
	}{
		{"scattered-320MiB", 320<<20 + 3*512, true}, // not a whole number of grains
		{"all-zero", 40 << 20, false},
		{"one-sector", 512, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := filepath.Join(dir, tt.name+".raw")
			if tt.data && tt.size > 1<<20 {
				sparseImage(t, raw, tt.size, 7)
			} else {
				data := make([]byte, tt.size)
				if tt.data {
					copy(data, "boot sector")
				}
				if err := os.WriteFile(raw, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			vmdk := filepath.Join(dir, tt.name+".vmdk")
			convertFile(t, raw, vmdk, Options{})

			var info qemuInfo
			if err := json.Unmarshal([]byte(testkit.Run(t, "qemu-img", "info", "--output=json", vmdk)), &info); err != nil {
				t.Fatal(err)
			}
			if info.Format != "vmdk" || info.Specific.Data.CreateType != "streamOptimized" || info.VirtualSize != tt.size {
				t.Errorf("qemu-img info = format %q, create type %q, size %d; want vmdk, streamOptimized, %d",
					info.Format, info.Specific.Data.CreateType, info.VirtualSize, tt.size)
			}
			if len(info.Specific.Data.Extents) != 1 || !info.Specific.Data.Extents[0].Compressed {
				t.Errorf("qemu-img info extents = %+v, want one compressed extent", info.Specific.Data.Extents)
			}
			if out := testkit.Run(t, "qemu-img", "check", vmdk); !strings.Contains(out, "No errors were found") {
				t.Errorf("qemu-img check %s:\n%s", vmdk, out)
			}
			back := filepath.Join(dir, tt.name+".back")
			testkit.Run(t, "qemu-img", "convert", "-f", "vmdk", "-O", "raw", vmdk, back)
			sameFiles(t, raw, back)
		})
	}
}

func TestConvertDeterministic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	raw := filepath.Join(dir, "a.raw")
	sparseImage(t, raw, 48<<20, 3)
	f, err := os.OpenFile(raw, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	convert := func(opts Options) []byte {
		var b bytes.Buffer
		if err := Convert(context.Background(), f, 48<<20, &b, opts); err != nil {
			t.Fatalf("Convert(%+v): %v", opts, err)
		}
		return b.Bytes()
	}
	one := convert(Options{Workers: 1})
	for _, w := range []int{2, 5} {
		if got := convert(Options{Workers: w}); !bytes.Equal(got, one) {
			t.Errorf("Convert with %d workers differs from 1 worker", w)
		}
	}
	if got := convert(Options{Level: 1}); bytes.Equal(got, one) {
		t.Error("Convert at level 1 equals level 6; Level is ignored")
	}

	// The derived CID follows the content; a given CID is used as is.
	desc := func(b []byte) Descriptor {
		d, err := ParseDescriptor(b[SectorSize : (1+descriptorSectors)*SectorSize])
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := desc(convert(Options{CID: 0x1234abcd})); d.CID != 0x1234abcd {
		t.Errorf("CID = %08x, want 1234abcd", d.CID)
	}
	cid := desc(one).CID
	if _, err := f.WriteAt([]byte{1}, 20<<20); err != nil {
		t.Fatal(err)
	}
	if cid2 := desc(convert(Options{})).CID; cid2 == cid {
		t.Errorf("CID %08x did not change with the content", cid)
	}
}

func TestConvertLayout(t *testing.T) {
	t.Parallel()
	const size = 70 << 20
	raw := make([]byte, size)
	copy(raw[40<<20:], "data in the second grain table")
	var b bytes.Buffer
	if err := Convert(context.Background(), bytes.NewReader(raw), size, &b, Options{CID: 5, ExtentName: "os.vmdk"}); err != nil {
		t.Fatal(err)
	}
	out := b.Bytes()
	if len(out)%SectorSize != 0 {
		t.Fatalf("output is %d bytes, not whole sectors", len(out))
	}
	h, err := ParseHeader(out)
	if err != nil {
		t.Fatal(err)
	}
	if h.GDOffset != GDAtEnd || h.Capacity != size/SectorSize || h.Version != 3 {
		t.Errorf("header = %+v", h)
	}
	tail := out[len(out)-3*SectorSize:]
	if !bytes.Equal(tail[2*SectorSize:], make([]byte, SectorSize)) {
		t.Error("last sector is not an end-of-stream marker")
	}
	foot, err := ParseHeader(tail[SectorSize:])
	if err != nil {
		t.Fatalf("parse footer: %v", err)
	}
	// One grain, in grain table 1; grain table 0 and 2 are left out.
	gdOff := int(foot.GDOffset) * SectorSize
	gd := out[gdOff : gdOff+12]
	if gd[0] != 0 || gd[8] != 0 || gd[4] == 0 {
		t.Errorf("grain directory = % x, want only entry 1 set", gd)
	}
	d, err := ParseDescriptor(out[SectorSize : (1+descriptorSectors)*SectorSize])
	if err != nil {
		t.Fatal(err)
	}
	if d.CreateType != "streamOptimized" || d.Extents[0].File != "os.vmdk" || d.Extents[0].Sectors != size/SectorSize {
		t.Errorf("descriptor = %+v", d)
	}
	if v, _ := d.Get("ddb.geometry.heads"); v != "255" {
		t.Errorf("ddb.geometry.heads = %q, want 255", v)
	}
}

func TestConvertErrors(t *testing.T) {
	t.Parallel()
	raw := bytes.NewReader(make([]byte, 1<<20))
	for _, tt := range []struct {
		name string
		size int64
		opts Options
		want error
	}{
		{"zero size", 0, Options{}, ErrInvalidInput},
		{"unaligned", 1000, Options{}, ErrInvalidInput},
		{"level", 1 << 20, Options{Level: 12}, ErrInvalidInput},
		{"adapter", 1 << 20, Options{AdapterType: "nvme"}, ErrInvalidInput},
		{"extent name", 1 << 20, Options{ExtentName: `a"b`}, ErrInvalidInput},
		{"short input", 2 << 20, Options{CID: 1}, io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Convert(context.Background(), raw, tt.size, io.Discard, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Errorf("Convert(size %d, %+v) = %v, want %v", tt.size, tt.opts, err, tt.want)
			}
		})
	}
}

func TestConvertCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Convert(ctx, bytes.NewReader(make([]byte, 8<<20)), 8<<20, io.Discard, Options{CID: 1})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Convert with canceled context = %v, want context.Canceled", err)
	}
}

func TestParseDescriptorErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, text, want string
	}{
		{"no CID", "createType=\"x\"\n", "missing CID"},
		{"bad CID", "CID=zz\ncreateType=\"x\"\n", "line 1: CID"},
		{"bad extent", "CID=1\ncreateType=\"x\"\nRW 12 SPARSE disk.vmdk\n", "line 3: extent"},
		{"junk", "CID=1\ncreateType=\"x\"\nhello\n", "line 3: want key=value"},
		{"ddb quote", "CID=1\ncreateType=\"x\"\nddb.a = b\n", "line 3: ddb.a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDescriptor([]byte(tt.text))
			if !errors.Is(err, ErrBadDescriptor) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseDescriptor(%q) = %v, want an error containing %q", tt.text, err, tt.want)
			}
		})
	}
}

func FuzzParseHeader(f *testing.F) {
	var w writer
	w.capacity = 1 << 20
	h, _ := w.header(GDAtEnd).MarshalBinary()
	f.Add(h)
	f.Add(make([]byte, SectorSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		enc, _ := h.MarshalBinary()
		h2, err := ParseHeader(enc)
		if err != nil || h2 != h {
			t.Fatalf("round trip of %+v = %+v, %v", h, h2, err)
		}
	})
}

func FuzzParseDescriptor(f *testing.F) {
	f.Add(Descriptor{CID: 9, ParentCID: CIDNoParent, CreateType: "streamOptimized",
		Extents: []Extent{{"RW", 8, "SPARSE", "d.vmdk"}}, DDB: ddb(8, "lsilogic")}.Marshal())
	f.Add([]byte("CID=1\ncreateType=\"x\"\nRW 1 FLAT \"f\" 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDescriptor(b)
		if err != nil {
			return
		}
		d2, err := ParseDescriptor(d.Marshal())
		if err != nil {
			t.Fatalf("reparse of %q: %v", d.Marshal(), err)
		}
		if string(d2.Marshal()) != string(d.Marshal()) {
			t.Fatalf("round trip changed %q to %q", d.Marshal(), d2.Marshal())
		}
	})
}
