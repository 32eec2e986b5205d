package render

import (
	"bytes"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// SetHostname sets the kernel host name from the first line of file (as
// rendered to /etc/hostname), with the sethostname system call; no
// hostnamectl or D-Bus involved.
func SetHostname(file string) error {
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
	return nil
}
