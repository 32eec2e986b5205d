package datastore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/sources/outfile"
)

// This file serves the settings migrator (sources/migration): it reads the
// link chain, makes a versioned directory without linking it, fills it
// without an open Store, and moves the links to it one at a time.

// CurrentLink is the name of the link that applications open.
const CurrentLink = "current"

// ErrNoDatastore: the base has no current link (a first boot).
var ErrNoDatastore = errors.New("no datastore")

// Chain is the link chain of a datastore base: current → Major → Minor →
// Patch → Dir, all names in the base directory.
type Chain struct {
	// Version is the datastore's version "X.Y.Z", from the name of Patch.
	Version string
	// Major, Minor and Patch are the link names vX, vX.Y and vX.Y.Z.
	Major, Minor, Patch string
	// Dir is the name of the versioned directory, vX.Y.Z_<random>.
	Dir string
}

// VersionLinks returns the link names of version "X.Y.Z": vX.Y.Z, vX.Y
// and vX.
func VersionLinks(version string) (patch, minor, major string, err error) {
	m := versionRE.FindStringSubmatch(version)
	if m == nil {
		return "", "", "", fmt.Errorf("datastore version %q is not X.Y.Z", version)
	}
	return "v" + version, "v" + m[1] + "." + m[2], "v" + m[1], nil
}

// ChainLink is one link of a chain: Name points at Target.
type ChainLink struct{ Name, Target string }

// LinkSteps returns the links that make dir (a name in the base) the
// datastore of version, in the order to replace them: vX.Y.Z → dir,
// vX.Y → vX.Y.Z, vX → vX.Y, current → vX. Until the first link that
// current reaches changes, current still names the old datastore; after
// it, the new one.
func LinkSteps(version, dir string) ([]ChainLink, error) {
	patch, minor, major, err := VersionLinks(version)
	if err != nil {
		return nil, err
	}
	return []ChainLink{{patch, dir}, {minor, patch}, {major, minor}, {CurrentLink, major}}, nil
}

// ReadChain follows current → vX → vX.Y → vX.Y.Z → directory under base
// and checks that each link is a bare name of the expected form and that
// the directory, v<version>_<random> of this or an earlier version,
// exists. It returns ErrNoDatastore (matching
// os.ErrNotExist) when base has no current link.
func ReadChain(base string) (Chain, error) {
	var c Chain
	major, err := os.Readlink(filepath.Join(base, CurrentLink))
	if errors.Is(err, os.ErrNotExist) {
		return c, fmt.Errorf("read datastore link %q: %w: %w", filepath.Join(base, CurrentLink), ErrNoDatastore, err)
	}
	if err != nil {
		return c, fmt.Errorf("read datastore link: %w", err)
	}
	names := []string{major}
	for len(names) < 4 {
		prev := names[len(names)-1]
		if strings.ContainsRune(prev, '/') {
			return c, fmt.Errorf("datastore link chain in %q: %w: link target %q is not a name in the base directory", base, ErrCorrupt, prev)
		}
		next, err := os.Readlink(filepath.Join(base, prev))
		if err != nil {
			return c, fmt.Errorf("datastore link chain in %q: %w: %w", base, ErrCorrupt, err)
		}
		names = append(names, next)
	}
	c.Major, c.Minor, c.Patch, c.Dir = names[0], names[1], names[2], names[3]
	c.Version = strings.TrimPrefix(c.Patch, "v")
	patch, minor, majorWant, err := VersionLinks(c.Version)
	switch {
	case err != nil || patch != c.Patch:
		return c, fmt.Errorf("datastore link chain in %q: %w: %q is not vX.Y.Z", base, ErrCorrupt, c.Patch)
	case minor != c.Minor || majorWant != c.Major:
		return c, fmt.Errorf("datastore link chain in %q: %w: current → %s → %s → %s does not name one version", base, ErrCorrupt, c.Major, c.Minor, c.Patch)
	case !versionDir(c.Dir):
		return c, fmt.Errorf("datastore link chain in %q: %w: %s names %q, not a vX.Y.Z_<random> directory", base, ErrCorrupt, c.Patch, c.Dir)
	}
	if st, err := os.Lstat(filepath.Join(base, c.Dir)); err != nil || !st.IsDir() {
		return c, fmt.Errorf("datastore link chain in %q: %w: %s is not a directory", base, ErrCorrupt, c.Dir)
	}
	return c, nil
}

// versionDir reports whether name has the form of a versioned directory,
// v<X.Y.Z>_<suffix>. A version's directory may be an older version's: a
// step without migrations links the new version to the same directory.
func versionDir(name string) bool {
	v, suffix, ok := strings.Cut(strings.TrimPrefix(name, "v"), "_")
	return ok && strings.HasPrefix(name, "v") && versionRE.MatchString(v) && suffix != "" && !strings.ContainsRune(suffix, '/')
}

// NewDir creates an empty datastore directory for version "X.Y.Z" under
// base, v<X.Y.Z>_<16 random alphanumerics> with live/ and pending/, makes
// it durable and returns its name. No link names it: a migration fills it
// with WriteContents and then moves the links with Link.
func NewDir(base, version string) (string, error) {
	patch, _, _, err := VersionLinks(version)
	if err != nil {
		return "", err
	}
	name := patch + "_" + randomAlnum(16)
	dir := filepath.Join(base, name)
	for _, d := range []string{dir, filepath.Join(dir, liveDir), filepath.Join(dir, pendingDir)} {
		if err := os.Mkdir(d, dirMode); err != nil {
			return "", fmt.Errorf("create datastore directory %q: %w", d, err)
		}
	}
	for _, d := range []string{dir, base} {
		if err := syncDir(d); err != nil {
			return "", err
		}
	}
	return name, nil
}

// Link points base/name at target, a name in base, atomically: a symlink
// under a temporary name is renamed over name, then base is fsynced.
func Link(base, name, target string) error {
	if strings.ContainsRune(name, '/') || strings.ContainsRune(target, '/') {
		return fmt.Errorf("link %q to %q: names must not contain '/'", name, target)
	}
	return replaceLink(base, name, target)
}

// IsTemp reports whether name is a temporary file or link of this package
// (a leftover of a crash when no write is in progress): outfile's names,
// and the links' ".<name>.<random>", start with a dot (so did ".tmp-", the
// prefix of older versions), which no link or directory of a datastore
// does.
func IsTemp(name string) bool { return strings.HasPrefix(name, outfile.TempPrefix) }

// Contents is everything a datastore holds: live values, metadata (live
// only) and the values of each pending transaction.
type Contents struct {
	Live     []KeyValue
	Metadata []MetadataEntry
	Pending  map[string][]KeyValue
}

// WriteContents fills dir, a datastore directory made by NewDir that no
// Store has open, with c, and makes it durable. It checks first what a
// Store would refuse: invalid keys and transaction names, values that are
// not canonical, a key that is both a value and a parent of values in one
// tree, and metadata below a live value (ErrConflict). Files are written
// as a checkpoint writes them; instead of an fsync per file, one
// syncfs(2) of the file system makes all of them durable at the end.
func WriteContents(dir string, c Contents) error {
	if err := checkContents(c); err != nil {
		return fmt.Errorf("write datastore %q: %w", dir, err)
	}
	live := filepath.Join(dir, liveDir)
	for _, kv := range c.Live {
		if err := writeAtomic(dir, dataPath(live, kv.Key), kv.Value, outfile.Options{NoSync: true}); err != nil {
			return fmt.Errorf("write datastore %q: %w", dir, err)
		}
	}
	for _, m := range c.Metadata {
		if err := writeAtomic(dir, metaPath(live, m.Meta, m.Data), m.Value, outfile.Options{NoSync: true}); err != nil {
			return fmt.Errorf("write datastore %q: %w", dir, err)
		}
	}
	for tx, kvs := range c.Pending {
		root := filepath.Join(dir, pendingDir, encodeSegment(tx))
		for _, kv := range kvs {
			if err := writeAtomic(dir, dataPath(root, kv.Key), kv.Value, outfile.Options{NoSync: true}); err != nil {
				return fmt.Errorf("write datastore %q: %w", dir, err)
			}
		}
	}
	return SyncFS(dir)
}

// checkContents refuses what a Store could not hold or would refuse.
func checkContents(c Contents) error {
	values := func(kvs []KeyValue, where string) (map[string]bool, error) {
		names := make(map[string]bool, len(kvs))
		for _, kv := range kvs {
			if kv.Key.typ != DataKey || len(kv.Key.segments) == 0 {
				return nil, fmt.Errorf("%s: %w: %q is not a data key", where, ErrInvalidKey, kv.Key.name)
			}
			if v, err := CanonicalValue(kv.Value); err != nil || string(v) != string(kv.Value) {
				return nil, fmt.Errorf("%s: %s: %w: not canonical JSON: %s", where, kv.Key.name, ErrInvalidValue, kv.Value)
			}
			if names[kv.Key.name] {
				return nil, fmt.Errorf("%s: %s is given twice", where, kv.Key.name)
			}
			names[kv.Key.name] = true
		}
		for _, kv := range kvs {
			if p := valueAbove(names, kv.Key); p != "" {
				return nil, fmt.Errorf("%s: %w: %s is a value and a parent of %s", where, ErrConflict, p, kv.Key.name)
			}
		}
		return names, nil
	}
	live, err := values(c.Live, "live")
	if err != nil {
		return err
	}
	seen := map[[2]string]bool{}
	for _, m := range c.Metadata {
		if m.Meta.typ != MetaKey || len(m.Meta.segments) != 1 || m.Data.typ != DataKey || len(m.Data.segments) == 0 {
			return fmt.Errorf("metadata %q on %q: %w", m.Meta.name, m.Data.name, ErrInvalidKey)
		}
		if v, err := CanonicalValue(m.Value); err != nil || string(v) != string(m.Value) {
			return fmt.Errorf("metadata %s on %s: %w: not canonical JSON: %s", m.Meta.name, m.Data.name, ErrInvalidValue, m.Value)
		}
		k := [2]string{m.Data.name, m.Meta.name}
		if seen[k] {
			return fmt.Errorf("metadata %s on %s is given twice", m.Meta.name, m.Data.name)
		}
		seen[k] = true
		if p := valueAbove(live, m.Data); p != "" {
			return fmt.Errorf("metadata %s on %s: %w: %s is a live value", m.Meta.name, m.Data.name, ErrConflict, p)
		}
	}
	for tx, kvs := range c.Pending {
		if err := CheckTransactionName(tx); err != nil {
			return err
		}
		if _, err := values(kvs, fmt.Sprintf("transaction %q", tx)); err != nil {
			return err
		}
	}
	return nil
}

// valueAbove returns the name of a strict ancestor of k that is in
// names, or "".
func valueAbove(names map[string]bool, k Key) string {
	ps := k.prefixes()
	for _, p := range ps[:len(ps)-1] {
		if names[p.name] {
			return p.name
		}
	}
	return ""
}

// SyncFS makes every write to the file system that holds path durable
// (syncfs(2)): cheaper than an fsync per file when a whole tree was
// written.
func SyncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sync file system of %q: %w", path, err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("sync file system of %q: %w", path, err)
	}
	return nil
}
