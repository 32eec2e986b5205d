package verity

import (
	"crypto/sha256"
	"encoding/binary"
)

// Domain separators, so a salt never equals a UUID or any other digest
// of the same inputs.
const (
	saltDomain = "petrel/verity/salt/v1"
	uuidDomain = "petrel/verity/uuid/v1"
)

// DeriveSalt returns a 32-byte salt computed from the build's inputs (for
// example the variant name, the version and the digest of the root
// filesystem image), so that rebuilding the same inputs reproduces the same
// hash device. It is SHA-256 over a domain tag and each part prefixed with
// its length, so ("ab", "c") and ("a", "bc") differ.
func DeriveSalt(parts ...[]byte) []byte {
	d := derive(saltDomain, parts)
	return d[:]
}

// DeriveUUID returns a UUID computed like DeriveSalt but with its own domain
// tag, marked as an RFC 9562 version 8 (custom) UUID.
func DeriveUUID(parts ...[]byte) [16]byte {
	d := derive(uuidDomain, parts)
	var u [16]byte
	copy(u[:], d[:16])
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // variant 10
	return u
}

func derive(domain string, parts [][]byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(domain)))
	h.Write(n[:])
	h.Write([]byte(domain))
	binary.BigEndian.PutUint64(n[:], uint64(len(parts)))
	h.Write(n[:])
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}
