// Package repo publishes a variant's builds as signed updates: a TUF
// repository under build/repos/<variant>/<arch>/ (metadata/ and targets/,
// consistent snapshots) whose targets are the compressed boot, root and
// hash images of each release and a manifest.json in upstream's shape.
// One repository holds every release of the variant; publishing adds to
// it, and max_version can be lowered to pull hosts back.
//
// Keys: a keys directory holds root.json (the signed root that images
// ship as their trust anchor) and one ed25519 PEM key per role
// (root.pem, targets.pem, snapshot.pem, timestamp.pem). CreateKeys makes
// a development set; a release names its own files. Private keys are only
// read, never copied into the repository.
//
// Expiry of each role comes from a policy (upstream's 2 weeks for targets
// and snapshot, 1 week for the timestamp by default); Refresh re-signs
// snapshot and timestamp without new targets. Validate reads a repository
// the way a host does (sources/updater) and checks every target.
package repo
