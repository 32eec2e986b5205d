package growth

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ResizeKernelPartition tells the kernel that partition number of the
// whole disk open as disk now spans length bytes from start
// (BLKPG_RESIZE_PARTITION). The start must be the one the kernel knows.
// Unlike BLKRRPART, this works while the disk's partitions are in use.
func ResizeKernelPartition(disk *os.File, number int, start, length int64) error {
	p := unix.BlkpgPartition{Start: start, Length: length, Pno: int32(number)}
	arg := unix.BlkpgIoctlArg{Op: unix.BLKPG_RESIZE_PARTITION, Datalen: int32(unsafe.Sizeof(p)), Data: (*byte)(unsafe.Pointer(&p))}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, disk.Fd(), unix.BLKPG, uintptr(unsafe.Pointer(&arg))); errno != 0 {
		return fmt.Errorf("resize partition %d of %s to %d bytes (BLKPG_RESIZE_PARTITION): %w", number, disk.Name(), length, errno)
	}
	return nil
}

// ext4IocResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64), from the
// kernel's fs/ext4/ext4.h (golang.org/x/sys/unix does not define it).
const ext4IocResizeFS = 0x40086610

// ResizeExt4 grows the ext4 file system mounted at mountpoint to blocks
// file system blocks (EXT4_IOC_RESIZE_FS on the mount point, as
// systemd-growfs and resize2fs do for a mounted file system).
func ResizeExt4(mountpoint string, blocks uint64) error {
	f, err := os.Open(mountpoint)
	if err != nil {
		return fmt.Errorf("open mount point: %w", err)
	}
	defer f.Close()
	n := blocks
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), ext4IocResizeFS, uintptr(unsafe.Pointer(&n))); errno != 0 {
		return fmt.Errorf("resize the ext4 file system on %s to %d blocks (EXT4_IOC_RESIZE_FS): %w", mountpoint, blocks, errno)
	}
	return nil
}
