package selinux

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// unlabeledType is the type the kernel reports, once a policy is loaded,
// for a file without a label (Petrel's policy's "unlabeled" initial SID).
const unlabeledType = "unlabeled_t"

// Unlabelled reports whether the file system mounted at dir was never
// labelled: its root directory has no label (the kernel runs without a
// policy, or a test host's kernel without SELinux), or has the type the
// kernel gives a file without one once a policy is loaded (unlabeled_t).
// A labelled file system costs one getxattr. Relabel labels the root
// last, so an interrupted relabel is still reported here.
func Unlabelled(dir string) (bool, error) {
	l, err := Label(dir)
	if err != nil {
		return false, err
	}
	return l == "" || Type(l) == unlabeledType, nil
}

// Walk calls fn for every file of the file system whose root is the
// directory root, root itself last and every directory after what it
// holds, with the file's name in that file system ("/", "/var/lib") and
// the label fc gives it as the path hostPath(name) has on the host.
// Files the policy leaves alone (<<none>>) are not passed to fn, and Walk
// does not descend into other file systems mounted below root.
func (fc *FileContexts) Walk(root string, hostPath func(name string) string, fn func(file, name, context string) error) error {
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil {
		return fmt.Errorf("walk %s: %w", root, err)
	}
	return fc.walk(root, "/", fs.ModeDir, st.Dev, hostPath, fn)
}

func (fc *FileContexts) walk(file, name string, mode fs.FileMode, dev uint64, hostPath func(string) string, fn func(file, name, context string) error) error {
	if mode.IsDir() {
		ents, err := os.ReadDir(file)
		if err != nil {
			return fmt.Errorf("walk %s: %w", file, err)
		}
		for _, e := range ents {
			p := filepath.Join(file, e.Name())
			if e.IsDir() {
				var st unix.Stat_t
				if err := unix.Lstat(p, &st); err != nil {
					return fmt.Errorf("walk %s: %w", p, err)
				}
				if st.Dev != dev {
					continue // another file system mounted here
				}
			}
			if err := fc.walk(p, path.Join(name, e.Name()), e.Type(), dev, hostPath, fn); err != nil {
				return err
			}
		}
	}
	ctx, ok := fc.Lookup(hostPath(name), mode)
	if !ok {
		return nil
	}
	return fn(file, name, ctx)
}

// Relabel labels every file of the file system whose root is root from
// fc, looking each up as hostPath of its name there (see Walk), and
// returns how many files it labelled. A file that already has its label
// is left as it is; files the policy leaves alone keep theirs. The root
// directory is labelled last: until then Unlabelled(root) is true, so a
// relabel cut short (a power loss) is done again at the next boot.
func (fc *FileContexts) Relabel(root string, hostPath func(name string) string) (int, error) {
	n := 0
	err := fc.Walk(root, hostPath, func(file, _, ctx string) error {
		cur, err := Label(file)
		if err != nil {
			return err
		}
		if cur == ctx {
			return nil
		}
		if err := SetLabel(file, ctx); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("relabel %s: %w", root, err)
	}
	return n, nil
}
