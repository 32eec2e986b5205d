// Package imagecodec compresses and decompresses Petrel update images (the
// boot, root and verity-hash partition images shipped in a TUF repository).
//
// The codec is zstd (RFC 8878) via github.com/klauspost/compress/zstd: on a
// realistic root file system it gives a 25 % smaller payload than lz4 -9 and
// compresses about 20 times faster in Go, while decompressing at the same
// speed (figures in docs/performance.md). Compression lives here next to
// decompression, rather than in tools/, so the host updater and the build
// system share one definition of the format; the package depends on nothing
// but the standard library and klauspost/compress.
//
// Compressed output is deterministic: the same input and Level give the same
// bytes whatever the number of CPUs.
package imagecodec
