//go:build !linux

package partflip

// oDirect is not used outside Linux.
const oDirect = 0
