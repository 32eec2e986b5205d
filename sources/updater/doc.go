// Package updater is the core of the host's update client: it refreshes a
// TUF repository's metadata from a trusted root, keeps the verified
// metadata in a cache on disk so that rollback and freeze attacks are
// caught across restarts, streams target files (the compressed bank
// images) to a writer while it checks their signed length and hashes, and
// chooses an update from manifest.json by version, version lock and waves.
//
// The TUF rules are go-tuf's (trustedmetadata: signatures, thresholds,
// versions, expiry, snapshot and timestamp consistency); the client
// workflow around them is Petrel's own rather than go-tuf's Updater,
// because the Updater writes its cache without fsync, reads whole targets
// into memory (a root image is 60 MiB), fetches over an HTTP client with no
// timeout and one try, takes no context, and reports a failed check
// without saying which role failed which way. Here every cache write goes
// through outfile (write, fsync, rename, fsync the directory), downloads
// have connect and stall timeouts, retries with backoff and resume with
// Range, and every refusal is a typed error naming the role or target
// (ExpiredError, RollbackError, HashError, ...), so that the agent and the
// API can tell an attack from a network fault.
//
// Delegated targets roles are not supported: Petrel's repositories list
// every target in the top-level targets role.
package updater
