// Package vmdk writes raw disk images as streamOptimized VMDK files, the
// compressed, sparse, append-only variant of the VMware sparse extent that
// VMware imports from an OVA and that `qemu-img convert -O vmdk -o
// subformat=streamOptimized` produces.
//
// A streamOptimized file is laid out as:
//
//	sector 0           sparse extent header (grain directory offset "at end")
//	sectors 1..20      embedded text descriptor
//	sector 128...      for every non-zero 64 KiB grain: a 12-byte grain marker
//	                   (LBA, compressed length) and the zlib-compressed grain,
//	                   padded to a sector; after the grains of each 32 MiB
//	                   span, a grain-table marker and its 4-sector table
//	                   (tables whose grains are all zero are left out)
//	                   grain-directory marker and the directory
//	                   footer marker and a copy of the header with the real
//	                   grain-directory offset
//	                   end-of-stream marker (one zero sector)
//
// Output is deterministic: it depends only on the raw content and the
// Options, never on the time, the number of CPUs or the worker count.
// Compression runs on several goroutines; the writer emits grains in order.
package vmdk
