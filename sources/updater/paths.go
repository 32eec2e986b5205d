package updater

import "path/filepath"

// Where a host keeps what the update agent and the settings migrator
// share. The trusted root ships in the image (buildctl make puts the keys'
// root.json there); the rest is on PRIVATE, which survives updates:
//
//	/var/lib/petrel/updates/
//	  metadata/              the agent's verified TUF metadata cache
//	  migrations/metadata/   the metadata of the refresh that wrote the staged bank
//	  migrations/targets/    manifest.json and the migrations of its chain (<sha256>.<name>)
//	  staged.json            what the staged bank holds
const (
	// DefaultRootPath is the trusted root metadata shipped in the image.
	DefaultRootPath = "/usr/share/petrel/updates/root.json"
	// DefaultStateDir holds the agent's state on PRIVATE.
	DefaultStateDir = "/var/lib/petrel/updates"
	// DefaultLockPath is the agent's lock: one command that changes the
	// disk at a time.
	DefaultLockPath = "/run/lock/petrel-updater.lock"
)

// Defaults of the migrator's --metadata-directory and
// --migration-directory: what the agent saves for it in DefaultStateDir
// (MigratorMetadataDir, MigratorTargetsDir).
const (
	DefaultMigratorMetadataDir = DefaultStateDir + "/migrations/metadata"
	DefaultMigratorTargetsDir  = DefaultStateDir + "/migrations/targets"
)

// MetadataDir is the metadata cache in the state directory dir.
func MetadataDir(dir string) string { return filepath.Join(dir, "metadata") }

// MigratorMetadataDir is where the agent saves, in the state directory
// dir, the metadata of the refresh that chose the staged update
// (Repo.SaveMetadata), for the migrator of the next boot.
func MigratorMetadataDir(dir string) string { return filepath.Join(dir, "migrations", "metadata") }

// MigratorTargetsDir is where the agent saves, in the state directory dir,
// manifest.json and the migrations between the running and the staged
// version (Repo.Prefetch), for the migrator of the next boot.
func MigratorTargetsDir(dir string) string { return filepath.Join(dir, "migrations", "targets") }
