// Package outfile is Petrel's one way to write a file that readers must
// never see half-written, on the build machine and on the host alike:
// Create makes a temporary file next to the destination, the caller
// writes it (directly, or by handing Name to an external tool), and Commit
// sets its mode, fsyncs it, closes it, renames it into place and fsyncs
// the directory, so that after a crash the destination holds its old
// content or the whole new content. Until Commit succeeds the destination
// keeps its old content (or stays absent); Discard, deferred, removes the
// temporary file of a write that failed. WriteFile does all of it for a
// byte slice and Copy for another file.
//
// The standard library has the pieces but no atomic writer, and the few
// libraries that offer one (google/renameio, natefinch/atomic) either skip
// the directory fsync or do not let an external tool write the temporary
// file by name, which the image build needs (mkfs.erofs, qemu-img).
package outfile
