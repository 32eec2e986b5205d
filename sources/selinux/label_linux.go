package selinux

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Label returns the label of path itself (a symlink is not followed), or
// "" when it has none.
func Label(path string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, Xattr, buf)
		switch {
		case errors.Is(err, unix.ERANGE):
			buf = make([]byte, 2*len(buf))
			continue
		case errors.Is(err, unix.ENODATA), errors.Is(err, unix.EOPNOTSUPP):
			return "", nil
		case err != nil:
			return "", fmt.Errorf("read label of %q: %w", path, err)
		}
		for n > 0 && buf[n-1] == 0 {
			n--
		}
		return string(buf[:n]), nil
	}
}

// SetLabel labels path itself (a symlink is not followed).
func SetLabel(path, context string) error {
	if err := unix.Lsetxattr(path, Xattr, []byte(context), 0); err != nil {
		return fmt.Errorf("label %q %s: %w", path, context, err)
	}
	return nil
}
