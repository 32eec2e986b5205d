package gpt

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// DeviceBlockSize returns the logical block size of f: BLKSSZGET for a
// block device, 512 for anything else (disk image files).
func DeviceBlockSize(f *os.File) (int, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return SectorSize, nil
	}
	bs, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
	if err != nil {
		return 0, fmt.Errorf("get logical block size of %s (BLKSSZGET): %w", f.Name(), err)
	}
	if err := CheckBlockSize(bs); err != nil {
		return 0, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return bs, nil
}
