// Package fetch downloads the external files of packages into a
// content-addressed lookaside cache, <dir>/<name>/<sha512>/<name>. Files come
// from a lookaside server, from their upstream URL when allowed, or, for
// Debian binary packages, from the Debian archive through apt-get. Every file
// is checked against its pinned SHA-512 before it is placed in the cache, and
// placement is atomic, so the cache never holds a partial or wrong file.
package fetch
