// Package tufrepo writes TUF repositories in Petrel's layout: signed
// metadata under metadata/ and target files under targets/, with
// consistent snapshots (N.root.json, V.targets.json, V.snapshot.json,
// timestamp.json; targets named <sha256>.<name>). `buildctl repo` publishes
// releases with it, and the updater's tests build real signed
// repositories with it, including broken ones, to attack the client. The
// host only reads repositories (sources/updater).
//
// Signing and the metadata types are go-tuf's (metadata package); this
// package adds what go-tuf leaves to its callers: keys in PEM files,
// target files hashed while they are copied rather than read into memory,
// versions that never go back, and files written in the order that keeps a
// repository served while it changes consistent: targets, then targets
// metadata, snapshot, and the timestamp last, each through outfile.
package tufrepo
