// Package migration moves a host's settings between OS versions. A
// migration is a TOML file holding an ordered list of reversible
// operations (add, remove or move settings, replace values, templates,
// generators or other metadata, or call a Go function registered in
// Functions); the migrator runs the migrations between the datastore's
// version and the OS version, forward for an upgrade and backward for a
// downgrade, on live values, metadata and every pending transaction, in
// memory; checks the result against the settings model; writes it into a
// new versioned datastore directory; and then moves the link chain to it
// one link at a time, so that current always names a complete datastore.
//
// Upstream runs one compiled binary per migration, downloaded at boot.
// Here migrations are data: they cost no binaries, are checked when the
// release is built (Parse, Check, CheckModel), and an older migrator can
// still run a newer release's migrations backward, as long as they use
// operations it knows. Every operation has a defined backward: whatever
// its forward destroys or cannot reconstruct (removed values, values that
// were already equal to a replacement) is kept in the migrated datastore
// directory (SavesFile) for the backward to restore, so forward then
// backward gives back the exact datastore. See docs/migrations.md.
package migration
