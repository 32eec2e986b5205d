// Package datastore stores Petrel settings on disk in Bottlerocket's layout:
// a versioned directory behind a chain of relative links, a live tree of
// committed values and metadata, and one pending tree per transaction.
//
// Unlike upstream, every write is atomic (temp file, fsync, rename, directory
// fsync) and a commit is atomic across all of its keys through a commit
// journal that Open rolls forward after a crash. See docs/datastore.md.
//
// A Store is safe for concurrent use by many goroutines. Open takes an
// exclusive lock on the datastore directory, so one process writes at a time.
package datastore
