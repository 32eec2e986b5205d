package initramfs

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// entry describes one path of a tree for comparison.
type entry struct {
	mode   os.FileMode
	data   string // file contents or symlink target
	mtime  time.Time
	uid    uint32
	gid    uint32
	isLink bool
}

func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{mode: fi.Mode(), mtime: fi.ModTime(), uid: st.Uid, gid: st.Gid}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			e.isLink = true
			e.data, err = os.Readlink(p)
		case fi.Mode().IsRegular():
			var b []byte
			b, err = os.ReadFile(p)
			e.data = string(b)
		}
		out[rel] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCopyTree(t *testing.T) {
	src := filepath.Join(t.TempDir(), "factory")
	mtime := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	files := []struct {
		path string
		mode os.FileMode
		data string
	}{
		{"passwd", 0o644, "root:x:0:0::/root:/usr/sbin/nologin\n"},
		{"shadow", 0o600, "root:*:::::::\n"},
		{"empty", 0o444, ""},
		{"bin/setuid-helper", 0o4755, "\x7fELF"},
		{"systemd/system/multi-user.target.wants/.keep", 0o644, "x"},
		{"ssl/private/key", 0o400, "secret"},
	}
	for _, f := range files {
		p := filepath.Join(src, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "ssl/private"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "bin"), 0o1777); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"os-release":        "../usr/lib/os-release", // relative, dangling in the test tree
		"localtime":         "/usr/share/zoneinfo/UTC",
		"systemd/user-conf": "../passwd",
		"systemd/system/multi-user.target.wants/a.service": "/usr/lib/systemd/system/a.service",
	} {
		if err := os.Symlink(target, filepath.Join(src, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(src, "initctl"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Times last, from the leaves up, so that creating entries does not
	// change a directory's time again.
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "etc")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}

	st, err := CopyTree(src, dst, false)
	if err != nil {
		t.Fatalf("CopyTree: %v", err)
	}
	if st.Files != len(files) || st.Symlinks != 4 || st.Dirs != 6 {
		t.Errorf("stats = %+v, want %d files, 4 symlinks, 6 dirs", st, len(files))
	}
	if want := []string{filepath.Join(src, "initctl")}; !slices.Equal(st.Skipped, want) {
		t.Errorf("skipped = %v, want %v", st.Skipped, want)
	}

	want := snapshot(t, src)
	delete(want, "initctl")
	got := snapshot(t, dst)
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing in the copy", p)
			continue
		}
		t.Run(p, func(t *testing.T) {
			if g.mode != w.mode {
				t.Errorf("mode %v, want %v", g.mode, w.mode)
			}
			if g.data != w.data || g.isLink != w.isLink {
				t.Errorf("contents %q (link %v), want %q (link %v)", g.data, g.isLink, w.data, w.isLink)
			}
			if !g.mtime.Equal(w.mtime) {
				t.Errorf("mtime %v, want %v", g.mtime, w.mtime)
			}
			if g.uid != w.uid || g.gid != w.gid {
				t.Errorf("owner %d:%d, want %d:%d", g.uid, g.gid, w.uid, w.gid)
			}
		})
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: in the copy but not in the source", p)
		}
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("destination mode changed: %v, %v", fi.Mode(), err)
	}
}

func TestCopyTreeErrors(t *testing.T) {
	t.Run("missing source", func(t *testing.T) {
		if _, err := CopyTree(filepath.Join(t.TempDir(), "nope"), t.TempDir(), false); err == nil {
			t.Error("CopyTree of a missing source succeeded")
		}
	})
	t.Run("existing entry in destination", func(t *testing.T) {
		src, dst := t.TempDir(), t.TempDir()
		for _, d := range []string{src, dst} {
			if err := os.WriteFile(filepath.Join(d, "passwd"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := CopyTree(src, dst, false); err == nil {
			t.Error("CopyTree over an existing file succeeded")
		}
	})
}
