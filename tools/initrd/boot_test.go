package initrd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/testkit"
)

const (
	bootGUID    = "0b8ba6fd-0d4e-4fc2-9a37-bd9ae1f12f3c"
	rootGUID    = "1c4e8f0a-6a55-4b7f-8d9e-1d2c3b4a5f60"
	hashGUID    = "2d5f901b-7b66-4c80-9eaf-2e3d4c5b6a71"
	diskGUID    = "3e60a12c-8c77-4d91-afb0-3f4e5d6c7b82"
	veritySalt  = "b7c84011741009bf8037e963363195e03507407599ddb9cd513d190b11dc80d0"
	verityUUID  = "4f71b23d-9d88-4ea2-b0c1-405f6e7d8c93"
	okMarker    = "PETREL-ROOT-OK"
	bootTimeout = 150 * time.Second
)

// bootFixture is everything one boot needs.
type bootFixture struct {
	kernel  debianKernel
	initrd  string
	disk    string // pristine disk image
	cmdline string
	rootOff int64 // byte offset of ROOT in the disk
	rootImg []byte
	payload []byte // contents of /etc/petrel-test/payload
	rootHex string
}

func newBootFixture(t *testing.T, ctx context.Context) *bootFixture {
	t.Helper()
	f := &bootFixture{kernel: fetchDebianKernel(t, ctx)}
	dir := t.TempDir()

	initBin := filepath.Join(dir, "petrel-init")
	testkit.GoBuild(t, "../../cmd/petrel-init", initBin)
	f.initrd = filepath.Join(dir, "initrd.img")
	out, err := os.Create(f.initrd)
	if err != nil {
		t.Fatal(err)
	}
	if err := Build(ctx, out, Options{Init: initBin, ModuleDir: f.kernel.ModuleDir, Modules: DefaultModules()}); err != nil {
		t.Fatalf("Build: %v", err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}

	// Root file system tree.
	tree := filepath.Join(dir, "rootfs")
	// The payload is read from the verity device by the test init; /etc is
	// a tmpfs that petrel-init fills from the factory directory.
	for _, d := range []string{"sbin", "dev", "proc", "sys", "etc", "usr/share/petrel-test", "usr/share/factory/etc/petrel-test"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testkit.GoBuild(t, "./testdata/testinit", filepath.Join(tree, "sbin/init"))
	f.payload = make([]byte, 256<<10)
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	rng.Read(f.payload)
	sum := sha256.Sum256(f.payload)
	files := map[string][]byte{
		"usr/share/petrel-test/payload":            f.payload,
		"usr/share/petrel-test/payload.sha256":     []byte(hex.EncodeToString(sum[:]) + "\n"),
		"usr/share/factory/etc/os-release":         []byte("NAME=Petrel\nID=petrel\n"),
		"usr/share/factory/etc/petrel-test/secret": []byte("factory secret\n"),
	}
	for p, b := range files {
		if err := os.WriteFile(filepath.Join(tree, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(tree, "usr/share/factory/etc/petrel-test/secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../os-release", filepath.Join(tree, "usr/share/factory/etc/petrel-test/link")); err != nil {
		t.Fatal(err)
	}
	rootImg := filepath.Join(dir, "root.img")
	testkit.Run(t, "mkfs.erofs", "--quiet", "--all-root", "-T", "1700000000", "-U", rootGUID, rootImg, tree)
	hashImg := filepath.Join(dir, "hash.img")
	vout := testkit.Run(t, "veritysetup", "format", "--data-block-size=4096", "--hash-block-size=4096",
		"--salt="+veritySalt, "--uuid="+verityUUID, rootImg, hashImg)
	m := regexp.MustCompile(`Root hash:\s+([0-9a-f]{64})`).FindStringSubmatch(vout)
	if m == nil {
		t.Fatalf("veritysetup printed no root hash:\n%s", vout)
	}
	f.rootHex = m[1]
	f.rootImg, err = os.ReadFile(rootImg)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.rootImg)%4096 != 0 {
		t.Fatalf("erofs image is %d bytes, not a multiple of 4096", len(f.rootImg))
	}
	hash, err := os.ReadFile(hashImg)
	if err != nil {
		t.Fatal(err)
	}
	blocks := len(f.rootImg) / 4096

	// GPT: BOOT (1 MiB, empty), ROOT, HASH right after it, so that
	// PARTUUID=<boot>/PARTNROFF=1 and =2 name them.
	const mib = 1 << 20
	rootMiB := (len(f.rootImg) + mib - 1) / mib
	hashMiB := (len(hash) + mib - 1) / mib
	rootStart := 4096
	hashStart := rootStart + rootMiB*2048
	end := hashStart + hashMiB*2048
	f.disk = filepath.Join(dir, "disk.img")
	if err := os.WriteFile(f.disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f.disk, int64(end+2048)*512); err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, "sgdisk", "-o", "-U", diskGUID,
		"-n", "1:2048:4095", "-t", "1:8300", "-c", "1:BOOT-A", "-u", "1:"+bootGUID,
		"-n", fmt.Sprintf("2:%d:%d", rootStart, hashStart-1), "-t", "2:8304", "-c", "2:ROOT-A", "-u", "2:"+rootGUID,
		"-n", fmt.Sprintf("3:%d:%d", hashStart, end-1), "-t", "3:8300", "-c", "3:HASH-A", "-u", "3:"+hashGUID,
		f.disk)
	f.rootOff = int64(rootStart) * 512
	df, err := os.OpenFile(f.disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := df.WriteAt(f.rootImg, f.rootOff); err != nil {
		t.Fatal(err)
	}
	if _, err := df.WriteAt(hash, int64(hashStart)*512); err != nil {
		t.Fatal(err)
	}
	if err := df.Close(); err != nil {
		t.Fatal(err)
	}

	table := fmt.Sprintf("root,,,ro,0 %d verity 1 PARTUUID=%s/PARTNROFF=1 PARTUUID=%s/PARTNROFF=2 4096 4096 %d 1 sha256 %s %s 2 restart_on_corruption ignore_zero_blocks",
		blocks*8, bootGUID, bootGUID, blocks, f.rootHex, veritySalt)
	f.cmdline = `console=ttyS0 panic=-1 loglevel=4 dm-mod.create="` + table + `" root=/dev/dm-0 rootfstype=erofs -- petrel.test=1`
	return f
}

// boot runs QEMU (TCG) on disk and returns the serial console output.
func (f *bootFixture) boot(t *testing.T, ctx context.Context, disk string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, testkit.Tool(t, "qemu-system-x86_64"), "-m", "512", "-nodefaults", "-no-user-config",
		"-serial", "stdio", "-display", "none", "-no-reboot",
		"-kernel", f.kernel.Vmlinuz, "-initrd", f.initrd,
		"-drive", "file="+disk+",format=raw,if=virtio,snapshot=on",
		"-append", f.cmdline)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("QEMU ran %.1fs", time.Since(start).Seconds())
	if ctx.Err() != nil {
		t.Fatalf("QEMU did not exit within %s; console:\n%s", bootTimeout, out.String())
	}
	if err != nil {
		t.Fatalf("QEMU: %v; console:\n%s", err, out.String())
	}
	return strings.ReplaceAll(out.String(), "\r", "")
}

func TestBootVerityRoot(t *testing.T) {
	ctx := t.Context()
	f := newBootFixture(t, ctx)

	t.Run("verified root", func(t *testing.T) {
		con := f.boot(t, ctx, f.disk)
		for _, want := range []string{
			"petrel-init: loaded ",
			"petrel-init: created device-mapper device root (/dev/dm-0, ",
			"verity root hash " + f.rootHex,
			`status "verity V"`,
			"petrel-init: mounted /dev/dm-0 read-only on / (erofs)",
			"petrel-init: populated /etc (tmpfs) from /usr/share/factory/etc: 2 files, 1 directories, 1 symlinks",
			"petrel-test: /etc is a writable tmpfs with the factory files",
			"petrel-init: switching root, exec /sbin/init petrel.test=1",
			"petrel-test: init started, args [petrel.test=1]",
			"petrel-test: root is /dev/dm-0 erofs ro",
			"petrel-test: dm-0 name root",
			okMarker,
		} {
			if !strings.Contains(con, want) {
				t.Errorf("console lacks %q", want)
			}
		}
		for _, bad := range []string{"FAIL", "petrel-init: fatal"} {
			if strings.Contains(con, bad) {
				t.Errorf("console contains %q", bad)
			}
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("console:\n%s", con)
		}
	})

	t.Run("corrupted block restarts", func(t *testing.T) {
		// Flip one byte inside the payload's third data block, in a copy
		// of the disk.
		chunk := f.payload[2*4096 : 3*4096]
		i := bytes.Index(f.rootImg, chunk)
		if i < 0 || i%4096 != 0 {
			t.Fatalf("payload block not found block-aligned in the erofs image (index %d)", i)
		}
		bad := filepath.Join(t.TempDir(), "bad.img")
		data, err := os.ReadFile(f.disk)
		if err != nil {
			t.Fatal(err)
		}
		data[f.rootOff+int64(i)+100] ^= 0x01
		if err := os.WriteFile(bad, data, 0o644); err != nil {
			t.Fatal(err)
		}
		con := f.boot(t, ctx, bad)
		if strings.Contains(con, okMarker) {
			t.Errorf("console shows %s although a data block was corrupted", okMarker)
		}
		if !strings.Contains(con, "petrel-test: init started") {
			t.Errorf("test init never started, so the corruption was not what stopped the boot")
		}
		if !regexp.MustCompile(`device-mapper: verity: .*data block \d+ is corrupted`).MatchString(con) {
			t.Errorf("console lacks the verity corruption message")
		}
		if !strings.Contains(con, "reboot: Restarting system") {
			t.Errorf("console lacks the kernel restart")
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("console:\n%s", con)
		}
	})
}
