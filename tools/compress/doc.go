// Package compress compresses the update images (boot, root and verity hash)
// of a variant build into files named <image>.zst. The codec itself lives in
// sources/imagecodec so that the host updater decompresses with the same
// code; this package adds the build-side file handling (temporary file, fsync,
// rename) and keeps the lz4-versus-zstd benchmark that chose the codec.
package compress
