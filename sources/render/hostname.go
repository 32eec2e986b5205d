package render

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// SetHostname sets the kernel host name from the first line of file (as
// rendered to /etc/hostname), with the sethostname system call; no
// hostnamectl or D-Bus involved. It then reads the name back from the
// kernel and prints "petrel: hostname NAME" to out, as petrel-ready does at
// boot, so a host name set at run time shows on the console too.
func SetHostname(file string, out io.Writer) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read host name: %w", err)
	}
	name, _, _ := bytes.Cut(data, []byte("\n"))
	name = bytes.TrimSpace(name)
	if len(name) == 0 {
		return fmt.Errorf("set host name from %q: file is empty", file)
	}
	if err := unix.Sethostname(name); err != nil {
		return fmt.Errorf("set host name to %q: %w", name, err)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Errorf("read back host name: %w", err)
	}
	fmt.Fprintf(out, "petrel: hostname %s\n", unix.ByteSliceToString(u.Nodename[:]))
	return nil
}
