package initramfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/sources/dm"
	"github.com/petrel-os/petrel/sources/selinux"
)

// Paths and limits of the initramfs environment.
const (
	// ModulesOrderPath lists the modules to load, one absolute path a line,
	// in dependency order. tools/initrd writes it.
	ModulesOrderPath = "/etc/modules.order"
	// NewRoot is where the real root is mounted before switching to it.
	NewRoot = "/newroot"

	deviceTimeout = 30 * time.Second
	rebootDelay   = 5 * time.Second
	prefix        = "petrel-init: "
)

// defaultInits are tried in order when init= is not given.
var defaultInits = []string{"/sbin/init", "/usr/lib/systemd/systemd", "/etc/init", "/bin/init"}

// Main is the entry point of /init. It must run as PID 1 in an initramfs.
// On success it never returns (the real init replaces it); on a fatal error
// it prints the error, waits a few seconds and reboots the machine.
// Started by /init itself as "/init --preload N", it is the reader of the
// preload instead (startPreload).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 2 && args[0] == preloadArg && os.Getpid() != 1 {
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 || n > maxPreloadFiles {
			fmt.Fprintf(stderr, "%s%s %q: expected the number of files, 1 to %d\n", prefix, preloadArg, args[1], maxPreloadFiles)
			return 2
		}
		return runPreload(ctx, n, stdout)
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(stderr, prefix+"refusing to run: must be PID 1 in an initramfs (it mounts, switches root and reboots)")
		return 2
	}
	con := console{w: stdout}
	err := run(ctx, con)
	con.printf("fatal: %v", err)
	con.printf("rebooting in %s", rebootDelay)
	unix.Sync()
	select {
	case <-ctx.Done():
	case <-time.After(rebootDelay):
	}
	if rerr := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); rerr != nil {
		con.printf("reboot: %v", rerr)
	}
	return 1
}

type console struct{ w io.Writer }

func (c console) printf(format string, args ...any) {
	fmt.Fprintf(c.w, prefix+format+"\n", args...)
}

// run performs the boot steps. It returns only on error.
func run(ctx context.Context, con console) error {
	if err := mountEarly(); err != nil {
		return err
	}
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return fmt.Errorf("read kernel command line: %w", err)
	}
	cl, err := ParseCmdline(string(raw))
	if err != nil {
		return err
	}
	dev, err := verityDevice(cl)
	if err != nil {
		return err
	}
	res, err := loadModules(ctx, ModulesOrderPath)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("loaded %d modules", res.loaded)
	if len(res.skipped) > 0 {
		msg += " (skipped: " + strings.Join(res.skipped, ", ") + ")"
	}
	con.printf("%s", msg)

	bd := blockDevs{sys: "/sys", dev: "/dev"}
	info, bootDisk, err := createRoot(ctx, con, bd, dev)
	if err != nil {
		return err
	}
	rootDev, err := rootNode(cl.Root, dev.Name, info.Minor)
	if err != nil {
		return err
	}
	bd = bd.withBootDisk(bootDisk)
	fixBootDisk(ctx, con, bd)
	fstype, err := mountRoot(rootDev, cl.RootFSType, cl.RootFlags)
	if err != nil {
		return err
	}
	con.printf("mounted %s read-only on / (%s)", rootDev, fstype)
	policyType, err := loadPolicy(con, NewRoot, cl.Enforcing, selinux.Kernel{FS: selinux.FS})
	if err != nil {
		return err
	}
	if err := setupEtc(con, NewRoot, policyType != ""); err != nil {
		return err
	}
	if err := mountAll(ctx, con, bd, NewRoot, cl.Mounts); err != nil {
		return err
	}
	if policyType != "" {
		if err := relabel(con, NewRoot, policyType, cl.Mounts); err != nil {
			return err
		}
	}
	initPath, err := pickInit(cl.Init)
	if err != nil {
		return err
	}
	startPreload(con, NewRoot)
	con.printf("switching root, exec %s", strings.Join(append([]string{initPath}, cl.InitArgs...), " "))
	return switchRoot(initPath, cl.InitArgs)
}

func mountEarly() error {
	for _, m := range []struct {
		fstype, target string
		flags          uintptr
	}{
		{"devtmpfs", "/dev", unix.MS_NOSUID},
		{"proc", "/proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"sysfs", "/sys", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	} {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return fmt.Errorf("create mount point %q: %w", m.target, err)
		}
		err := unix.Mount(m.fstype, m.target, m.fstype, m.flags, "")
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %q: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

// createRoot creates the verity root device d and returns it and the
// kernel name of the boot disk: the disk that holds its data device.
func createRoot(ctx context.Context, con console, bd blockDevs, d dm.Device) (dm.Info, string, error) {
	if err := waitPath(ctx, dm.ControlPath, deviceTimeout); err != nil {
		return dm.Info{}, "", err
	}
	ctl, err := dm.OpenControl(ctx, dm.ControlPath)
	if err != nil {
		return dm.Info{}, "", err
	}
	defer ctl.Close()
	bootDisk := ""
	for i, t := range d.Targets {
		p, disks, err := bd.rewriteTable(ctx, t.Params, deviceTimeout)
		if err != nil {
			return dm.Info{}, "", fmt.Errorf("resolve devices of %q table %d: %w", d.Name, i+1, err)
		}
		if bootDisk == "" && len(disks) > 0 {
			bootDisk = disks[0]
		}
		d.Targets[i].Params = p
	}
	info, err := ctl.Create(ctx, d)
	if err != nil {
		return dm.Info{}, "", err
	}
	if _, err := bd.wait(ctx, info.Path(), deviceTimeout); err != nil {
		return dm.Info{}, "", err
	}
	st, err := ctl.Status(ctx, d.Name)
	if err != nil {
		return dm.Info{}, "", err
	}
	var status []string
	for _, s := range st {
		status = append(status, s.Type+" "+s.Params)
	}
	con.printf("created device-mapper device %s (%s, %d:%d, ro)%s, status %q",
		d.Name, info.Path(), info.Major, info.Minor, rootHashNote(d), strings.Join(status, "; "))
	if bootDisk == "" {
		return dm.Info{}, "", fmt.Errorf("find the boot disk: no disk in sysfs holds the devices of %q", d.Name)
	}
	con.printf("boot disk /dev/%s (holds the verity root's partitions)", bootDisk)
	return info, bootDisk, nil
}

// rootHashNote names the root hash of the first verity target.
func rootHashNote(d dm.Device) string {
	for _, t := range d.Targets {
		f := strings.Fields(t.Params)
		if t.Type == "verity" && len(f) > 8 {
			return " verity root hash " + f[8]
		}
	}
	return ""
}

// mountRoot mounts dev read-only on NewRoot, trying the given file system
// types (comma separated) or erofs then ext4.
func mountRoot(dev, fstypes, flags string) (string, error) {
	if err := os.MkdirAll(NewRoot, 0o755); err != nil {
		return "", fmt.Errorf("create %q: %w", NewRoot, err)
	}
	types := []string{"erofs", "ext4"}
	if fstypes != "" {
		types = strings.Split(fstypes, ",")
	}
	var errs []error
	for _, t := range types {
		err := unix.Mount(dev, NewRoot, t, unix.MS_RDONLY, flags)
		if err == nil {
			return t, nil
		}
		errs = append(errs, fmt.Errorf("as %s: %w", t, err))
	}
	return "", fmt.Errorf("mount root %s on %q: %w", dev, NewRoot, errors.Join(errs...))
}

// pickInit checks that the init program exists in the new root.
func pickInit(init string) (string, error) {
	cands := defaultInits
	if init != "" {
		cands = []string{init}
	}
	for _, c := range cands {
		// Lstat: an absolute symlink would resolve against the initramfs.
		if _, err := os.Lstat(filepath.Join(NewRoot, c)); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("find init in the new root: none of %s exists", strings.Join(cands, ", "))
}

// switchRoot moves the kernel file systems into the new root, frees the
// initramfs, makes the new root "/" and executes init.
func switchRoot(initPath string, initArgs []string) error {
	for _, m := range []string{"/dev", "/proc", "/sys"} {
		if err := unix.Mount(m, NewRoot+m, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s into the new root: %w", m, err)
		}
	}
	if err := unix.Chdir(NewRoot); err != nil {
		return fmt.Errorf("enter new root: %w", err)
	}
	freeInitramfs()
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move new root onto /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot into new root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("enter /: %w", err)
	}
	argv := append([]string{initPath}, initArgs...)
	if err := unix.Exec(initPath, argv, os.Environ()); err != nil {
		return fmt.Errorf("execute %s: %w", initPath, err)
	}
	return nil
}

// freeInitramfs deletes the initramfs files (they live in RAM) without
// crossing into other mounts, like switch_root(8). Errors are ignored: a
// leftover file only costs memory.
func freeInitramfs() {
	var sfs unix.Statfs_t
	if err := unix.Statfs("/", &sfs); err != nil {
		return
	}
	if sfs.Type != unix.RAMFS_MAGIC && sfs.Type != unix.TMPFS_MAGIC {
		return
	}
	var root unix.Stat_t
	if err := unix.Lstat("/", &root); err != nil {
		return
	}
	removeTree("/", root.Dev)
}

func removeTree(dir string, dev uint64) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil || st.Dev != dev {
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			removeTree(p, dev)
			_ = unix.Rmdir(p)
			continue
		}
		_ = unix.Unlink(p)
	}
}

// waitPath waits until path exists.
func waitPath(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := os.Stat(path)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return fmt.Errorf("wait %s for %q: %w", timeout, path, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %q: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
