// Package outfile writes build outputs so that they are never seen
// half-written: Create makes a temporary file next to the destination,
// the caller writes it (directly, or by handing Name to an external tool),
// and Commit sets the mode to 0644, syncs, closes and renames it into
// place. Until Commit succeeds the destination keeps its old content (or
// stays absent); Discard, deferred, removes the temporary file of a write
// that failed.
package outfile
