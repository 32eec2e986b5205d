package initramfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/sources/outfile"
	"github.com/petrel-os/petrel/sources/selinux"
)

// FactoryEtc is where the read-only root keeps the default contents of
// /etc. The packages install their /etc files there; /init copies them into
// a tmpfs mounted on /etc, so /etc is writable and starts from the same
// state on every boot.
const FactoryEtc = "/usr/share/factory/etc"

// CopyStats counts what CopyTree copied.
type CopyStats struct {
	Files, Dirs, Symlinks int
	// Skipped lists entries of other types (devices, FIFOs, sockets),
	// which are not copied.
	Skipped []string
	labels  bool
}

// CopyTree copies the contents of the directory src into the existing
// directory dst: regular files, directories and symlinks (the link text as
// is), with their permission bits (including setuid, setgid and sticky),
// owner, group and modification times. dst's own mode, owner and times are
// left alone. Entries of other types are listed in Skipped. With labels,
// each copy gets the SELinux label of its source (when it has one). It
// stops at the first error.
func CopyTree(src, dst string, labels bool) (CopyStats, error) {
	st := CopyStats{labels: labels}
	if err := copyDir(src, dst, &st); err != nil {
		return st, err
	}
	return st, nil
}

func copyDir(src, dst string, st *CopyStats) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("read directory %q: %w", src, err)
	}
	for _, e := range ents {
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		var sys unix.Stat_t
		if err := unix.Lstat(s, &sys); err != nil {
			return fmt.Errorf("stat %q: %w", s, err)
		}
		switch sys.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if err := unix.Mkdir(d, 0o700); err != nil {
				return fmt.Errorf("create directory %q: %w", d, err)
			}
			if err := copyDir(s, d, st); err != nil {
				return err
			}
			st.Dirs++
		case unix.S_IFREG:
			// A tmpfs: nothing survives a crash, so nothing is fsynced.
			// The mode, owner and times follow below.
			if err := outfile.Copy(s, d, outfile.Options{Mode: 0o600, NoSync: true, NoReplace: true}); err != nil {
				return err
			}
			st.Files++
		case unix.S_IFLNK:
			target, err := os.Readlink(s)
			if err != nil {
				return fmt.Errorf("read symlink %q: %w", s, err)
			}
			if err := os.Symlink(target, d); err != nil {
				return fmt.Errorf("create symlink %q: %w", d, err)
			}
			st.Symlinks++
		default:
			st.Skipped = append(st.Skipped, s)
			continue
		}
		if err := copyMeta(d, &sys); err != nil {
			return err
		}
		if st.labels {
			if err := copyLabel(s, d); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyLabel gives dst the SELinux label of src, if src has one.
func copyLabel(src, dst string) error {
	l, err := selinux.Label(src)
	if err != nil || l == "" {
		return err
	}
	return selinux.SetLabel(dst, l)
}

// copyMeta gives dst the owner, mode and times of the source's stat st.
// The mode is set after the owner, because chown clears setuid and setgid.
func copyMeta(dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("set owner of %q: %w", dst, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return fmt.Errorf("set mode of %q: %w", dst, err)
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %q: %w", dst, err)
	}
	return nil
}

// setupEtc mounts a tmpfs (mode 0755) on root/etc and fills it from
// root/usr/share/factory/etc. A root without a factory directory gets an
// empty /etc; that is reported but not an error. With labels (a policy is
// loaded), /etc and everything in it get the labels of their factory
// sources, which the image build set from the policy's file_contexts.
func setupEtc(con console, root string, labels bool) error {
	etc := filepath.Join(root, "etc")
	if err := unix.Mount("tmpfs", etc, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on %q: %w", etc, err)
	}
	factory := filepath.Join(root, FactoryEtc)
	if _, err := os.Lstat(factory); errors.Is(err, fs.ErrNotExist) {
		con.printf("no %s in the new root: /etc is an empty tmpfs", FactoryEtc)
		return nil
	}
	if labels {
		if err := copyLabel(factory, etc); err != nil {
			return fmt.Errorf("label /etc: %w", err)
		}
	}
	st, err := CopyTree(factory, etc, labels)
	if err != nil {
		return fmt.Errorf("populate /etc from %s: %w", FactoryEtc, err)
	}
	con.printf("populated /etc (tmpfs) from %s: %d files, %d directories, %d symlinks", FactoryEtc, st.Files, st.Dirs, st.Symlinks)
	if len(st.Skipped) > 0 {
		con.printf("not copied into /etc (not a file, directory or symlink): %v", st.Skipped)
	}
	return nil
}
