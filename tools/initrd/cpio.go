package initrd

import (
	"fmt"
	"io"
)

// cpio newc ("070701") writer. Only what an initramfs needs: directories,
// regular files and symlinks, owned by root, with a fixed mtime. No device
// nodes: the kernel's built-in initramfs already provides /dev/console.

const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
	trailer     = "TRAILER!!!"
)

type cpioWriter struct {
	w     io.Writer
	ino   uint32
	mtime int64
	n     int64 // bytes written, for padding
}

func (c *cpioWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return err
}

func (c *cpioWriter) pad() error {
	if r := c.n % 4; r != 0 {
		return c.write(make([]byte, 4-r))
	}
	return nil
}

// entry writes one record. name has no leading slash.
func (c *cpioWriter) entry(name string, mode uint32, data []byte) error {
	c.ino++
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, uint32(c.mtime), len(data), 0, 0, 0, 0, len(name)+1, 0)
	if err := c.write([]byte(hdr)); err != nil {
		return fmt.Errorf("write cpio header of %q: %w", name, err)
	}
	if err := c.write(append([]byte(name), 0)); err != nil {
		return fmt.Errorf("write cpio name %q: %w", name, err)
	}
	if err := c.pad(); err != nil {
		return err
	}
	if err := c.write(data); err != nil {
		return fmt.Errorf("write cpio data of %q: %w", name, err)
	}
	return c.pad()
}

// close writes the trailer record.
func (c *cpioWriter) close() error {
	c.ino = 0
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, len(trailer)+1, 0)
	if err := c.write([]byte(hdr)); err != nil {
		return fmt.Errorf("write cpio trailer: %w", err)
	}
	if err := c.write(append([]byte(trailer), 0)); err != nil {
		return fmt.Errorf("write cpio trailer: %w", err)
	}
	return c.pad()
}
