// Command testinit is the /sbin/init of the boot test's root file system.
// It checks that the root is the read-only dm-verity device, reads every
// file, prints PETREL-ROOT-OK if all is well, and powers the machine off.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	fmt.Println("petrel-test: init started, args", os.Args[1:])
	ok := check()
	if ok {
		fmt.Println("PETREL-ROOT-OK")
	}
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		fmt.Println("petrel-test: FAIL power off:", err)
	}
	select {}
}

func fail(format string, args ...any) bool {
	fmt.Printf("petrel-test: FAIL "+format+"\n", args...)
	return false
}

func check() bool {
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return fail("read /proc/mounts: %v", err)
	}
	rootOK := false
	for _, l := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && f[1] == "/" {
			fmt.Println("petrel-test: root mount:", l)
			rootOK = f[0] == "/dev/dm-0" && f[2] == "erofs" && strings.HasPrefix(f[3], "ro,")
		}
	}
	if !rootOK {
		return fail("root is not /dev/dm-0 erofs ro")
	}
	fmt.Println("petrel-test: root is /dev/dm-0 erofs ro")
	name, err := os.ReadFile("/sys/block/dm-0/dm/name")
	if err != nil || strings.TrimSpace(string(name)) != "root" {
		return fail("dm-0 name %q, %v", name, err)
	}
	fmt.Println("petrel-test: dm-0 name root")
	if err := os.WriteFile("/written", []byte("x"), 0o644); err == nil {
		return fail("writing to / succeeded")
	}
	var files, bytes int64
	err = filepath.WalkDir("/", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (p == "/proc" || p == "/sys" || p == "/dev") {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.Copy(io.Discard, f)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		files++
		bytes += n
		return nil
	})
	if err != nil {
		return fail("read all files: %v", err)
	}
	fmt.Printf("petrel-test: read %d files, %d bytes\n", files, bytes)
	if !checkEtc(string(mounts)) {
		return false
	}
	want, err := os.ReadFile("/usr/share/petrel-test/payload.sha256")
	if err != nil {
		return fail("read payload hash: %v", err)
	}
	data, err := os.ReadFile("/usr/share/petrel-test/payload")
	if err != nil {
		return fail("read payload: %v", err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != strings.TrimSpace(string(want)) {
		return fail("payload hash mismatch")
	}
	return true
}

// checkEtc checks that /etc is a writable tmpfs that petrel-init filled
// from /usr/share/factory/etc: contents, a 0600 mode and a symlink.
func checkEtc(mounts string) bool {
	tmpfs := false
	for _, l := range strings.Split(mounts, "\n") {
		f := strings.Fields(l)
		if len(f) >= 4 && f[1] == "/etc" {
			fmt.Println("petrel-test: /etc mount:", l)
			tmpfs = f[2] == "tmpfs" && strings.HasPrefix(f[3], "rw,") && strings.Contains(f[3], "mode=755")
		}
	}
	if !tmpfs {
		return fail("/etc is not a rw tmpfs with mode 755")
	}
	if b, err := os.ReadFile("/etc/os-release"); err != nil || string(b) != "NAME=Petrel\nID=petrel\n" {
		return fail("/etc/os-release: %q, %v", b, err)
	}
	if fi, err := os.Stat("/etc/petrel-test/secret"); err != nil || fi.Mode().Perm() != 0o600 {
		return fail("/etc/petrel-test/secret: %v, %v", fi, err)
	}
	if target, err := os.Readlink("/etc/petrel-test/link"); err != nil || target != "../os-release" {
		return fail("/etc/petrel-test/link -> %q, %v", target, err)
	}
	if err := os.WriteFile("/etc/written", []byte("x"), 0o644); err != nil {
		return fail("write to /etc: %v", err)
	}
	fmt.Println("petrel-test: /etc is a writable tmpfs with the factory files")
	return true
}
