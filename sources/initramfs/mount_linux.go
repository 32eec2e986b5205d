package initramfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// mountFlags splits mount options into mount(2) flags and the data string
// for the file system.
func mountFlags(options string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range strings.Split(options, ",") {
		switch o {
		case "", "defaults", "rw":
		case "ro":
			flags |= unix.MS_RDONLY
		case "nodev":
			flags |= unix.MS_NODEV
		case "nosuid":
			flags |= unix.MS_NOSUID
		case "noexec":
			flags |= unix.MS_NOEXEC
		case "noatime":
			flags |= unix.MS_NOATIME
		default:
			data = append(data, o)
		}
	}
	return flags, strings.Join(data, ",")
}

// mountAll mounts the petrel.mount= file systems below root, in order:
// devices once they appear (waiting up to deviceTimeout), bind sources
// after creating them. Mount points missing in root are created, which
// works where the parent is writable (a data partition mounted earlier).
// A device whose partition has one of DATA's fixed GUIDs is grown to the
// end of its disk before it is mounted and its file system after.
func mountAll(ctx context.Context, con console, bd blockDevs, root string, mounts []Mount) error {
	for _, m := range mounts {
		target := filepath.Join(root, m.Target)
		flags, data := mountFlags(m.Options)
		src, fstype := "", m.FSType
		var grow *dataGrowth
		if m.FSType == "bind" {
			src, fstype, flags = filepath.Join(root, m.Source), "", unix.MS_BIND
			if err := os.MkdirAll(src, 0o755); err != nil {
				return fmt.Errorf("create bind source %s: %w", m.Source, err)
			}
		} else {
			n, err := bd.wait(ctx, m.Source, deviceTimeout)
			if err != nil {
				return fmt.Errorf("find device for %s: %w", m.Target, err)
			}
			src = filepath.Join(bd.dev, strings.TrimPrefix(n.Path, "/dev/"))
			if n.Part != nil && isData(n.Part.GUID) {
				grow = growDataPartition(ctx, con, bd, n)
			}
		}
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("create mount point %s: %w", m.Target, err)
		}
		if err := unix.Mount(src, target, fstype, flags, data); err != nil {
			return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, src, m.Target, err)
		}
		con.printf("mounted %s (%s) on %s (%s)", m.Source, src, m.Target, m.FSType)
		if grow != nil {
			grow.growDataFS(ctx, con, target, m.Target)
		}
	}
	return nil
}
