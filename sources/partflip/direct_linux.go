package partflip

import "syscall"

// oDirect bypasses the page cache for block devices, so the 512-byte write
// reaches the disk as exactly one sector.
const oDirect = syscall.O_DIRECT
