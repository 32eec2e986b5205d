// Package ova packs VMDK disks and an OVF descriptor into an OVA appliance.
//
// Pack renders an OVF template by filling its placeholders ({{OS_DISK}},
// {{OS_DISK_BYTES}}, and for a split layout {{DATA_DISK}} and
// {{DATA_DISK_BYTES}}), writes a SHA-256 manifest and lays the files out as a
// USTAR archive in the order DSP0243 requires: the .ovf first, then the .mf,
// then the disks in the order of the OVF References section. Tar headers are
// fixed (mtime from Options, uid/gid 0, mode 0644), so the same inputs always
// give the same bytes.
package ova
