// Package manifest reads and writes manifest.json, the signed TUF target
// that lists a repository's updates: for each variant and architecture the
// published versions, the highest version hosts may run (max_version), the
// waves of each update and the names of its boot, root and hash images,
// plus the migrations between versions. The shape is upstream's, so that
// either side can read the other's manifests.
//
// Parse is strict about what a host relies on: every field present with
// the right type, versions that are semantic versions, image names that
// are plain target names, wave seeds and times in order, no key given
// twice; errors name the field ("updates[1].max_version"). Unknown fields
// are ignored, as upstream does, so that an older host can read a newer
// manifest.
//
// Versions are semantic versions (Version), compared by precedence.
package manifest
