package initrd

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/petrel-os/petrel/sources/testkit"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// fakeKo returns a minimal ELF64 relocatable object whose .modinfo section
// holds the given key=value strings.
func fakeKo(kv ...string) []byte {
	modinfo := []byte(strings.Join(kv, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	le := binary.LittleEndian
	var b bytes.Buffer
	hdr := make([]byte, 64)
	copy(hdr, "\x7fELF\x02\x01\x01")
	le.PutUint16(hdr[16:], 1)  // ET_REL
	le.PutUint16(hdr[18:], 62) // EM_X86_64
	le.PutUint32(hdr[20:], 1)
	shoff := 64 + len(modinfo) + len(shstr)
	shoff = (shoff + 7) &^ 7
	le.PutUint64(hdr[40:], uint64(shoff))
	le.PutUint16(hdr[52:], 64)
	le.PutUint16(hdr[58:], 64)
	le.PutUint16(hdr[60:], 3)
	le.PutUint16(hdr[62:], 2)
	b.Write(hdr)
	b.Write(modinfo)
	b.Write(shstr)
	b.Write(make([]byte, shoff-b.Len()))
	sh := func(name, typ uint32, off, size int) {
		s := make([]byte, 64)
		le.PutUint32(s[0:], name)
		le.PutUint32(s[4:], typ)
		le.PutUint64(s[24:], uint64(off))
		le.PutUint64(s[32:], uint64(size))
		le.PutUint64(s[48:], 1)
		b.Write(s)
	}
	sh(0, 0, 0, 0)
	sh(1, 1, 64, len(modinfo))
	sh(10, 3, 64+len(modinfo), len(shstr))
	return b.Bytes()
}

func compress(t *testing.T, ext string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	var err error
	switch ext {
	case ".xz":
		w, err = xz.NewWriter(&b)
	case ".gz":
		w = gzip.NewWriter(&b)
	case ".zst":
		w, err = zstd.NewWriter(&b)
	default:
		return data
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fakeTree writes a small lib/modules/<kver> tree and a fake init binary.
func fakeTree(t *testing.T) (moduleDir, initBin string) {
	t.Helper()
	dir := t.TempDir()
	moduleDir = filepath.Join(dir, "lib/modules/6.1.0-test-amd64")
	mods := map[string][]string{
		"kernel/drivers/virtio/virtio_ring.ko":      {"name=virtio_ring"},
		"kernel/drivers/virtio/virtio.ko":           {"name=virtio", "depends=virtio_ring"},
		"kernel/drivers/block/virtio_blk.ko":        {"name=virtio_blk", "depends=virtio,virtio_ring"},
		"kernel/drivers/md/dm-mod.ko.gz":            {"name=dm_mod", "depends="},
		"kernel/drivers/md/dm-bufio.ko.zst":         {"name=dm_bufio", "depends=dm-mod"},
		"kernel/drivers/md/dm-verity.ko.xz":         {"name=dm_verity", "depends=dm-mod,dm-bufio,reed_solomon"},
		"kernel/lib/reed_solomon/reed_solomon.ko":   {"name=reed_solomon"},
		"kernel/fs/jbd2/jbd2.ko":                    {"name=jbd2", "softdep=pre: crypto-crc32c"},
		"kernel/fs/ext4/ext4.ko":                    {"name=ext4", "depends=jbd2", "softdep=pre: crc32c post: nonexistent"},
		"kernel/crypto/crc32c_generic.ko":           {"name=crc32c_generic", "alias=crc32c", "alias=crypto-crc32c"},
		"kernel/arch/x86/crypto/crc32c-intel.ko":    {"name=crc32c_intel", "alias=crc32c", "alias=crypto-crc32c"},
		"kernel/drivers/unrelated/foo.ko":           {"name=foo", "depends=virtio"},
		"kernel/drivers/unrelated/needs-missing.ko": {"name=needs_missing", "depends=gone"},
	}
	for p, kv := range mods {
		full := filepath.Join(moduleDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, compress(t, filepath.Ext(p), fakeKo(kv...)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(moduleDir, "modules.builtin"), []byte("kernel/fs/erofs/erofs.ko\nkernel/crypto/sha256_generic.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	initBin = filepath.Join(dir, "petrel-init")
	if err := os.WriteFile(initBin, []byte("\x7fELF fake init"), 0o755); err != nil {
		t.Fatal(err)
	}
	return moduleDir, initBin
}

var fakeRequest = []string{"virtio_blk", "dm-verity", "ext4", "erofs"}

func TestResolveModules(t *testing.T) {
	moduleDir, _ := fakeTree(t)
	mods, err := ResolveModules(t.Context(), moduleDir, fakeRequest)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range mods {
		names = append(names, m.Name)
	}
	want := []string{"virtio_ring", "virtio", "virtio_blk", "dm_mod", "dm_bufio", "reed_solomon", "dm_verity",
		"crc32c_generic", "crc32c_intel", "jbd2", "ext4"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("ResolveModules order = %v, want %v", names, want)
	}

	_, err = ResolveModules(t.Context(), moduleDir, []string{"needs-missing", "absent", "virtio"})
	if !errors.Is(err, ErrModuleNotFound) {
		t.Fatalf("ResolveModules with missing modules: %v, want ErrModuleNotFound", err)
	}
	for _, w := range []string{`"gone" (needed by needs_missing)`, `"absent" (requested)`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// listing renders an uncompressed newc archive as text, one entry a line.
func listing(t *testing.T, archive []byte) string {
	t.Helper()
	var b strings.Builder
	for off := 0; ; {
		if off+110 > len(archive) || string(archive[off:off+6]) != "070701" {
			t.Fatalf("bad cpio header at offset %d", off)
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(archive[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		mode, uid, gid, nlink, mtime, size, namesize := field(1), field(2), field(3), field(4), field(5), field(6), field(11)
		name := string(archive[off+110 : off+110+namesize-1])
		off = (off + 110 + namesize + 3) &^ 3
		data := archive[off : off+size]
		off = (off + size + 3) &^ 3
		if name == trailer {
			if off != len(archive) {
				t.Fatalf("%d bytes after the trailer", len(archive)-off)
			}
			return b.String()
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%06o %d:%d nlink=%d mtime=%d size=%d sha256=%x %s\n", mode, uid, gid, nlink, mtime, size, sum[:6], name)
		if name == "etc/modules.order" {
			for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				fmt.Fprintf(&b, "    %s\n", l)
			}
		}
	}
}

func build(t *testing.T, opts Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Build(t.Context(), &b, opts); err != nil {
		t.Fatalf("Build: %v", err)
	}
	return b.Bytes()
}

func TestBuildGolden(t *testing.T) {
	moduleDir, initBin := fakeTree(t)
	opts := Options{Init: initBin, ModuleDir: moduleDir, Modules: fakeRequest, Compression: None, ModTime: time.Unix(1700000000, 0)}
	raw := build(t, opts)
	got := listing(t, raw)
	golden := filepath.Join("testdata", "fake-tree.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("archive listing differs from %s (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}

	// GNU cpio reads the archive and sees the same names.
	cmd := exec.Command(testkit.Tool(t, "cpio"), "-it", "--quiet")
	cmd.Stdin = bytes.NewReader(raw)
	out := testkit.RunCmd(t, cmd)
	var names []string
	for _, l := range strings.Split(got, "\n") {
		if f := strings.Fields(l); len(f) == 7 {
			names = append(names, f[6])
		}
	}
	if g := strings.Fields(out); !reflect.DeepEqual(g, names) {
		t.Errorf("cpio -it lists %v, want %v", g, names)
	}
}

func TestBuildReproducibleAndCompressed(t *testing.T) {
	moduleDir, initBin := fakeTree(t)
	opts := Options{Init: initBin, ModuleDir: moduleDir, Modules: fakeRequest, ModTime: time.Unix(1700000000, 0)}
	raw := build(t, Options{Init: initBin, ModuleDir: moduleDir, Modules: fakeRequest, Compression: None, ModTime: opts.ModTime})
	for _, c := range []Compression{Gzip, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			opts.Compression = c
			a, b := build(t, opts), build(t, opts)
			if !bytes.Equal(a, b) {
				t.Fatal("two builds from the same inputs differ")
			}
			tool := map[Compression][]string{Gzip: {"gzip", "-dc"}, Zstd: {"zstd", "-dc"}}[c]
			cmd := exec.Command(testkit.Tool(t, tool[0]), tool[1:]...)
			cmd.Stdin = bytes.NewReader(a)
			if out := testkit.RunCmd(t, cmd); out != string(raw) {
				t.Fatalf("%s output differs from the uncompressed archive", strings.Join(tool, " "))
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	moduleDir, initBin := fakeTree(t)
	err := Build(context.Background(), io.Discard, Options{Compression: "lzma"})
	for _, w := range []string{"Init:", "ModuleDir:", `Compression: "lzma"`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Build with empty options: %v, want it to mention %q", err, w)
		}
	}
	if err := Build(context.Background(), io.Discard, Options{Init: moduleDir + "/modules.builtin", ModuleDir: moduleDir}); err == nil {
		t.Error("Build accepted a non-ELF init")
	}
	if err := Build(context.Background(), io.Discard, Options{Init: initBin, ModuleDir: moduleDir, Modules: []string{"absent"}}); !errors.Is(err, ErrModuleNotFound) {
		t.Errorf("Build with a missing module: %v, want ErrModuleNotFound", err)
	}
}

func FuzzParseModinfo(f *testing.F) {
	f.Add([]byte("name=ext4\x00depends=jbd2,mbcache\x00softdep=pre: crc32c post: x\x00alias=fs-ext4\x00"))
	f.Add([]byte("softdep=gcm pre: a\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		mi, err := parseModinfo(b)
		if err != nil {
			return
		}
		for _, d := range append(append(mi.depends, mi.softPre...), mi.softPost...) {
			if d == "" || strings.Contains(d, "-") {
				t.Fatalf("parseModinfo(%q) gave dependency %q", b, d)
			}
		}
	})
}
