// Package bootdisk finds the disk that holds a running Petrel host's
// partitions and tells which A/B bank booted.
//
// Scan lists the whole disks of the sysfs block class directory
// (/sys/class/block), skipping partitions and virtual devices (loop, ram,
// zram, dm-, md, sr, nbd), and reads the GPT of each through its device
// node with the device's logical block size (gpt.ReadFile).
//
// The booted bank comes from the kernel command line: the bank's grub.cfg
// puts a dm-verity table whose data and hash devices are
// PARTUUID=<uuid>/PARTNROFF=<n>, where <uuid> is the booted BOOT
// partition. BootPartUUID finds that PARTUUID and BankOf maps it to a bank:
// the first partition of the BOOT type is bank A, the second bank B.
package bootdisk
