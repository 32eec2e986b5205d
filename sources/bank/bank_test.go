package bank

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/imagecodec"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/sources/verity"
)

// plan is the metal-dev layout: a 2 GiB OS disk with two banks.
func plan(t testing.TB) *disklayout.Layout {
	t.Helper()
	l, err := disklayout.Plan(disklayout.Options{OSImageSizeGiB: 2, DataImageSizeGiB: 1, InPlaceUpdates: true, LabelPrefix: "PETREL"})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// newDisk writes a sparse image file of the OS disk with its GPT and
// fills every partition of both banks with a pattern, so that a test sees
// any byte written where it should not be.
func newDisk(t testing.TB) string {
	t.Helper()
	l := plan(t)
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(l.OSDisk.SizeBytes); err != nil {
		t.Fatal(err)
	}
	if err := gpt.Write(context.Background(), f, l.OSDisk.SizeBytes, l.OSDisk.GPT([]byte("bank test"))); err != nil {
		t.Fatal(err)
	}
	for _, p := range l.OSDisk.Partitions {
		// The first and last MiB: enough to see writes at either end.
		for _, off := range []int64{p.OffsetBytes(), p.OffsetBytes() + p.SizeBytes() - disklayout.MiB} {
			if _, err := f.WriteAt(bytes.Repeat([]byte(p.Key[:1]), disklayout.MiB), off); err != nil {
				t.Fatal(err)
			}
		}
	}
	return path
}

// images are a bank's three images, raw and compressed.
type images struct {
	raw, zst map[Part][]byte
	rootHash []byte
}

// newImages makes a root of rootBytes pseudo-random bytes (half
// compressible), its dm-verity hash tree and a boot image.
func newImages(t testing.TB, rootBytes int, seed uint64) *images {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	root := make([]byte, rootBytes)
	for i := 0; i < len(root); i += 8 {
		if i/4096%2 == 0 {
			v := rng.Uint64()
			for j := 0; j < 8 && i+j < len(root); j++ {
				root[i+j] = byte(v >> (8 * j))
			}
		}
	}
	var hash testkit.MemFile
	tree, err := verity.Format(context.Background(), bytes.NewReader(root), int64(len(root)), &hash,
		verity.Params{Salt: verity.DeriveSalt([]byte("bank"), []byte{byte(seed)}), UUID: verity.DeriveUUID([]byte("bank"))})
	if err != nil {
		t.Fatal(err)
	}
	boot := bytes.Repeat([]byte("boot image "), 300_000)
	im := &images{raw: map[Part][]byte{Root: root, Boot: boot, Hash: hash.Bytes()}, zst: map[Part][]byte{}, rootHash: tree.RootHash}
	for p, raw := range im.raw {
		im.zst[p] = compress(t, raw)
	}
	return im
}

func compress(t testing.TB, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := imagecodec.Compress(context.Background(), &b, bytes.NewReader(raw), imagecodec.LevelFastest); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func from(data []byte) Source {
	return func(w io.Writer) error { _, err := w.Write(data); return err }
}

// digest returns the SHA-256 of each partition named by keys, for
// comparing before and after.
func digest(t testing.TB, path string, keys ...string) map[string][32]byte {
	t.Helper()
	l := plan(t)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][32]byte{}
	for _, k := range keys {
		p, _ := l.OSDisk.Partition(k)
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, p.OffsetBytes(), p.SizeBytes())); err != nil {
			t.Fatal(err)
		}
		var d [32]byte
		copy(d[:], h.Sum(nil))
		out[k] = d
	}
	return out
}

var otherThanB = []string{disklayout.KeyBIOS, disklayout.KeyEFIA, disklayout.KeyBootA, disklayout.KeyRootA, disklayout.KeyHashA,
	disklayout.KeyReservedA, disklayout.KeyEFIB, disklayout.KeyReservedB, disklayout.KeyPrivate}

func TestFind(t *testing.T) {
	t.Parallel()
	l := plan(t)
	tab := l.OSDisk.GPT([]byte("seed"))
	for _, b := range []bootstate.Bank{bootstate.BankA, bootstate.BankB} {
		got, err := Find(tab, b)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[bootstate.Bank][]string{bootstate.BankA: {"BOOT-A", "ROOT-A", "HASH-A"}, bootstate.BankB: {"BOOT-B", "ROOT-B", "HASH-B"}}[b]
		for i, ext := range []Extent{got.Boot, got.Root, got.Hash} {
			p, _ := l.OSDisk.Partition(keys[i])
			if ext != (Extent{Number: p.Number, Label: p.Label, Offset: p.OffsetBytes(), Size: p.SizeBytes()}) {
				t.Errorf("bank %s %s = %+v, want partition %d at %d MiB, %d MiB", b, keys[i], ext, p.Number, p.OffsetMiB, p.SizeMiB)
			}
		}
	}

	mutate := func(fn func(*gpt.Table)) *gpt.Table {
		tt := l.OSDisk.GPT([]byte("seed"))
		fn(tt)
		return tt
	}
	single, err := disklayout.Plan(disklayout.Options{OSImageSizeGiB: 2, DataImageSizeGiB: 1, LabelPrefix: "PETREL"})
	if err != nil {
		t.Fatal(err)
	}
	byNumber := func(tt *gpt.Table, n int) *gpt.Partition {
		for i := range tt.Partitions {
			if tt.Partitions[i].Number == n {
				return &tt.Partitions[i]
			}
		}
		t.Fatalf("no partition %d", n)
		return nil
	}
	for _, tc := range []struct {
		name string
		tab  *gpt.Table
		want string
	}{
		{"one bank only", single.OSDisk.GPT(nil), "1 partitions of the BOOT type"},
		{"root of the wrong type", mutate(func(tt *gpt.Table) { byNumber(tt, 9).Type = disklayout.TypeReserved }),
			"partition 9 (ROOT-B): type 0c5d99a5-d331-4147-baef-08e2b855bdc9, want 5526016a-1a97-4ea4-b39a-b7c8c6ca4502"},
		{"hash with another label", mutate(func(tt *gpt.Table) { byNumber(tt, 10).Name = "PETREL-HASH-A" }),
			`partition 10: label "PETREL-HASH-A", want one ending in -HASH-B`},
		{"hash missing", mutate(func(tt *gpt.Table) {
			tt.Partitions = append(tt.Partitions[:9], tt.Partitions[10:]...)
		}), "partition 10 (HASH-B): missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Find(tc.tab, bootstate.BankB)
			if !errors.Is(err, ErrLayout) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Find = %v, want ErrLayout naming %q", err, tc.want)
			}
		})
	}
}

// TestWriteAndCheck writes bank B of a disk image and reads it back: the
// partitions hold the images, nothing outside bank B's three partitions
// changed, and Check passes; then a flipped byte in each partition is
// found by Check, naming what differs.
func TestWriteAndCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	disk := newDisk(t)
	before := digest(t, disk, otherThanB...)
	im := newImages(t, 6<<20, 1)
	w, err := Open(ctx, disk, bootstate.BankB)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Check(ctx, im.rootHash); !errors.Is(err, ErrNotWritten) {
		t.Fatalf("Check before writing = %v, want ErrNotWritten", err)
	}
	for _, p := range Parts() {
		n, err := w.Write(ctx, p, from(im.zst[p]))
		if err != nil || n != int64(len(im.raw[p])) {
			t.Fatalf("Write %s = %d, %v; want %d bytes", p, n, err, len(im.raw[p]))
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Check(ctx, im.rootHash); err != nil {
		t.Fatalf("Check = %v", err)
	}
	if after := digest(t, disk, otherThanB...); !equalDigests(before, after) {
		t.Errorf("writing bank B changed other partitions: %v", changed(before, after))
	}
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range Parts() {
		ext := w.Layout().Extent(p)
		got := make([]byte, len(im.raw[p]))
		if _, err := f.ReadAt(got, ext.Offset); err != nil || !bytes.Equal(got, im.raw[p]) {
			t.Errorf("%s partition does not hold the %s image (%v)", ext.Label, p, err)
		}
	}

	flip := func(off int64) func() {
		b := make([]byte, 1)
		f.ReadAt(b, off)
		f.WriteAt([]byte{b[0] ^ 1}, off)
		return func() { f.WriteAt(b, off) }
	}
	for _, tc := range []struct {
		name string
		off  int64
		want string
		is   error
	}{
		{"boot", w.Layout().Boot.Offset + 12345, "boot image read back from partition 8 (PETREL-BOOT-B): sha256 of its 3300000 bytes is", ErrReadBack},
		{"root", w.Layout().Root.Offset + 5*4096 + 7, "against dm-verity root hash", verity.ErrCorrupt},
		{"hash tree", w.Layout().Hash.Offset + 4096 + 100, "against dm-verity root hash", verity.ErrCorrupt},
	} {
		restore := flip(tc.off)
		err := w.Check(ctx, im.rootHash)
		restore()
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check with a flipped byte in the %s = %v; want %v naming %q", tc.name, err, tc.is, tc.want)
		}
	}
	if err := w.Check(ctx, append([]byte{0}, im.rootHash[1:]...)); !errors.Is(err, verity.ErrCorrupt) {
		t.Errorf("Check against another root hash = %v, want verity.ErrCorrupt", err)
	}
	if err := w.Check(ctx, im.rootHash); err != nil {
		t.Errorf("Check after restoring = %v", err)
	}
}

func equalDigests(a, b map[string][32]byte) bool { return len(changed(a, b)) == 0 }

func changed(a, b map[string][32]byte) []string {
	var out []string
	for k := range a {
		if a[k] != b[k] {
			out = append(out, k)
		}
	}
	return out
}

// TestWriteRefusals: an image larger than its partition stops at the
// partition's end; a source that fails (a hash that differs from the
// signed one) fails the write even though its bytes were written, and
// Check then refuses the bank; a stream that is not zstd is refused.
func TestWriteRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	disk := newDisk(t)
	before := digest(t, disk, otherThanB...)
	w, err := Open(ctx, disk, bootstate.BankB)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	boot := w.Layout().Boot
	big := compress(t, make([]byte, boot.Size+1))
	n, err := w.Write(ctx, Boot, from(big))
	var tl *TooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, ErrTooLarge) || n != boot.Size ||
		err.Error() != "boot image does not fit partition 8 (PETREL-BOOT-B) of 41943040 bytes" {
		t.Errorf("Write of a %d-byte image into %d bytes = %d, %v", boot.Size+1, boot.Size, n, err)
	}
	if after := digest(t, disk, otherThanB...); !equalDigests(before, after) {
		t.Errorf("an image too large changed other partitions: %v", changed(before, after))
	}

	im := newImages(t, 1<<20, 2)
	bad := errors.New("download boot.zst: hash mismatch")
	if _, err := w.Write(ctx, Boot, func(wr io.Writer) error {
		if _, err := wr.Write(im.zst[Boot]); err != nil {
			return err
		}
		return bad
	}); !errors.Is(err, bad) {
		t.Errorf("Write from a failing source = %v, want its error", err)
	}
	if _, err := w.Write(ctx, Root, from([]byte("not zstd at all"))); !errors.Is(err, imagecodec.ErrFormat) {
		t.Errorf("Write of a stream that is not zstd = %v, want imagecodec.ErrFormat", err)
	}
	for _, p := range []Part{Root, Hash} {
		if _, err := w.Write(ctx, p, from(im.zst[p])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Check(ctx, im.rootHash); !errors.Is(err, ErrNotWritten) || !strings.Contains(err.Error(), "boot image") {
		t.Errorf("Check after a failed boot write = %v, want ErrNotWritten for the boot image", err)
	}
	// A source that would go on for ever stops when the writer gives up.
	stopped := make(chan error, 1)
	if _, err := w.Write(ctx, Boot, func(wr io.Writer) error {
		for {
			if _, err := wr.Write(big); err != nil {
				stopped <- err
				return err
			}
		}
	}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Write = %v, want ErrTooLarge", err)
	}
	if err := <-stopped; !errors.Is(err, errAbandoned) {
		t.Errorf("the source's write after the writer gave up = %v, want errAbandoned", err)
	}
}

// TestOpenRefusesOtherDisks: a disk without a bank layout is named.
func TestOpenRefusesOtherDisks(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "blank.img")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), p, bootstate.BankB); !errors.Is(err, gpt.ErrInvalid) {
		t.Errorf("Open of a disk without a GPT = %v, want gpt.ErrInvalid", err)
	}
}
