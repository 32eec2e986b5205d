// Package verity builds and checks dm-verity hash trees in the on-disk
// format that `veritysetup format --format 1` writes: hash type 1 (the
// "normal" salted format, salt prepended to every hashed block), SHA-256,
// a 512-byte verity superblock at the start of the hash device and the tree
// itself starting at hash block 1, top level first.
//
// Format writes the superblock and the tree for a data image and returns
// the root hash and the device-mapper table line that the kernel needs to
// map the image read-only; Verify recomputes the tree and names the first
// corrupt block; HashSize tells a caller how large the hash device must be
// before anything is written. DeriveSalt and DeriveUUID turn a build's
// inputs into a salt and a UUID, so that rebuilding the same inputs gives
// the same hash device byte for byte.
//
// Output is byte-identical to veritysetup's for the same salt, UUID, block
// sizes and data (on a fresh or zeroed hash device; Format also clears the
// rest of hash block 0 after the superblock, which veritysetup leaves as it
// was). See docs/verity.md.
//
// All functions are safe for concurrent use. Format and Verify hash the data
// on up to GOMAXPROCS goroutines that they own and wait for before
// returning; the data source must allow parallel ReadAt calls and the hash
// destination parallel WriteAt calls at disjoint offsets (as *os.File does).
package verity
