package initrd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/sources/testkit"
)

// debianKernel is an extracted Debian kernel package.
type debianKernel struct {
	Vmlinuz   string // boot/vmlinuz-<kver>
	ModuleDir string // lib/modules/<kver>
}

// fetchDebianKernel returns the kernel that linux-image-amd64 points to,
// downloading it with apt-get download and unpacking it with dpkg-deb into
// <user cache>/petrel-test/ on first use. A lock file keeps parallel test
// processes from fetching it twice.
func fetchDebianKernel(t testing.TB, ctx context.Context) debianKernel {
	t.Helper()
	deps := testkit.RunCmd(t, exec.CommandContext(ctx, testkit.Tool(t, "apt-cache"), "depends", "linux-image-amd64"))
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(deps))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Depends: "); ok && strings.HasPrefix(v, "linux-image-") {
			pkg = v
			break
		}
	}
	if pkg == "" {
		t.Fatalf("apt-cache depends linux-image-amd64 names no linux-image-* package:\n%s", deps)
	}
	kver := strings.TrimPrefix(pkg, "linux-image-")

	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	cache := filepath.Join(base, "petrel-test", pkg)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatalf("lock kernel cache: %v", err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)

	root := filepath.Join(cache, "root")
	k := debianKernel{
		Vmlinuz:   filepath.Join(root, "boot", "vmlinuz-"+kver),
		ModuleDir: filepath.Join(root, "lib", "modules", kver),
	}
	if _, err := os.Stat(k.Vmlinuz); err == nil {
		return k
	}
	dl, err := os.MkdirTemp(cache, "download-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dl)
	download := exec.CommandContext(ctx, testkit.Tool(t, "apt-get"), "download", pkg)
	download.Dir = dl
	testkit.RunCmd(t, download)
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("apt-get download %s left %d .deb files", pkg, len(debs))
	}
	tmp := filepath.Join(dl, "root")
	testkit.RunCmd(t, exec.CommandContext(ctx, testkit.Tool(t, "dpkg-deb"), "-x", debs[0], tmp))
	if _, err := os.Stat(filepath.Join(tmp, "boot", "vmlinuz-"+kver)); err != nil {
		t.Fatalf("%s holds no boot/vmlinuz-%s: %v", debs[0], kver, err)
	}
	os.RemoveAll(root)
	if err := os.Rename(tmp, root); err != nil {
		t.Fatal(fmt.Errorf("install kernel into cache: %w", err))
	}
	return k
}
