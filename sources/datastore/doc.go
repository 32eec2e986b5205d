// Package datastore stores Petrel settings on disk in Bottlerocket's layout:
// a versioned directory behind a chain of relative links, a live tree of
// committed values and metadata, and one pending tree per transaction.
//
// Unlike upstream, every file write is atomic (temp file and rename), and
// every change is one checksummed record of a write-ahead log: a live
// change (a commit, a live write, metadata) is made durable by one
// fdatasync that concurrent writers share (group commit); a pending write
// into a transaction is only written, so it survives a crash of the
// process and becomes durable with the next fdatasync or checkpoint. The
// live and pending files are brought up to date and fsynced at
// checkpoints and by Close, and Open replays the log after a crash, so a
// commit is atomic across all of its keys. See docs/datastore.md.
//
// A Store is safe for concurrent use by many goroutines; reads are served
// from memory. Open takes an exclusive lock on the datastore directory, so
// one process writes at a time, and starts the committer goroutine that
// Close stops.
package datastore
