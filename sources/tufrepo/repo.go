package tufrepo

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/petrel-os/petrel/sources/outfile"
)

// Directories of a repository.
const (
	MetadataDir = "metadata"
	TargetsDir  = "targets"
)

// Roles are the top-level roles, from the root of trust down.
var Roles = []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

// ErrNotRepository marks a directory without a repository's metadata.
var ErrNotRepository = errors.New("not a TUF repository")

// Repo is a repository being edited: its top-level metadata in memory and
// its files in Dir.
type Repo struct {
	Dir       string
	Root      *metadata.Metadata[metadata.RootType]
	Targets   *metadata.Metadata[metadata.TargetsType]
	Snapshot  *metadata.Metadata[metadata.SnapshotType]
	Timestamp *metadata.Metadata[metadata.TimestampType]
}

// NewRoot returns root metadata, version 1 with consistent snapshots, that
// trusts keys[role] for each role with threshold 1, expiring at expires.
// It is not signed yet.
func NewRoot(keys map[string][]*Key, expires time.Time) (*metadata.Metadata[metadata.RootType], error) {
	root := metadata.Root(expires.UTC().Truncate(time.Second))
	for _, role := range Roles {
		if len(keys[role]) == 0 {
			return nil, fmt.Errorf("make root: no key for role %s", role)
		}
		for _, k := range keys[role] {
			if err := root.Signed.AddKey(k.Public(), role); err != nil {
				return nil, fmt.Errorf("make root: add key of %s: %w", role, err)
			}
		}
	}
	return root, nil
}

// NewKeys returns a new ed25519 key for each role.
func NewKeys() (map[string][]*Key, error) {
	keys := map[string][]*Key{}
	for _, role := range Roles {
		k, err := NewKey()
		if err != nil {
			return nil, err
		}
		keys[role] = []*Key{k}
	}
	return keys, nil
}

// NewSignedRoot returns root metadata as NewRoot makes it, signed by the
// root keys, as JSON: the root of trust of a new repository.
func NewSignedRoot(keys map[string][]*Key, expires time.Time) ([]byte, error) {
	root, err := NewRoot(keys, expires)
	if err != nil {
		return nil, err
	}
	for _, k := range keys[metadata.ROOT] {
		if _, err := root.Sign(k.Signer()); err != nil {
			return nil, fmt.Errorf("sign root: %w", err)
		}
	}
	data, err := root.ToBytes(true)
	if err != nil {
		return nil, fmt.Errorf("encode root: %w", err)
	}
	return data, nil
}

// Create starts a repository in dir, which must hold none, trusting the
// signed root metadata rootJSON. Its other roles are empty, unsigned and
// at version 0 until the first Commit.
func Create(dir string, rootJSON []byte) (*Repo, error) {
	root, err := metadata.Root().FromBytes(rootJSON)
	if err != nil {
		return nil, fmt.Errorf("read root metadata: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, MetadataDir, "timestamp.json")); err == nil {
		return nil, fmt.Errorf("create repository in %s: it already holds one", dir)
	}
	for _, d := range []string{MetadataDir, TargetsDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("create repository: %w", err)
		}
	}
	r := &Repo{Dir: dir, Root: root, Targets: metadata.Targets(), Snapshot: metadata.Snapshot(), Timestamp: metadata.Timestamp()}
	r.Targets.Signed.Version, r.Snapshot.Signed.Version, r.Timestamp.Signed.Version = 0, 0, 0
	if err := r.WriteRoot(rootJSON); err != nil {
		return nil, err
	}
	return r, nil
}

// Open reads the repository in dir: root.json, timestamp.json and the
// snapshot and targets versions the timestamp names. Signatures and expiry
// are not checked (that is the client's job: sources/updater).
func Open(dir string) (*Repo, error) {
	md := filepath.Join(dir, MetadataDir)
	r := &Repo{Dir: dir}
	var err error
	if r.Root, err = metadata.Root().FromFile(filepath.Join(md, "root.json")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s has no %s/root.json", ErrNotRepository, dir, MetadataDir)
		}
		return nil, fmt.Errorf("read %s: %w", filepath.Join(md, "root.json"), err)
	}
	if r.Timestamp, err = metadata.Timestamp().FromFile(filepath.Join(md, "timestamp.json")); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(md, "timestamp.json"), err)
	}
	sv := r.Timestamp.Signed.Meta["snapshot.json"].Version
	p := filepath.Join(md, strconv.FormatInt(sv, 10)+".snapshot.json")
	if r.Snapshot, err = metadata.Snapshot().FromFile(p); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	tv := r.Snapshot.Signed.Meta["targets.json"].Version
	p = filepath.Join(md, strconv.FormatInt(tv, 10)+".targets.json")
	if r.Targets, err = metadata.Targets().FromFile(p); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return r, nil
}

// TargetPath returns where the file of target t is in the repository:
// targets/<sha256>.<name>.
func (r *Repo) TargetPath(t *metadata.TargetFiles) string {
	return filepath.Join(r.Dir, TargetsDir, hex.EncodeToString(t.Hashes["sha256"])+"."+t.Path)
}

// HashFile returns the length and SHA-256 of the file at path, read as a
// stream.
func HashFile(path string) (int64, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, nil, fmt.Errorf("hash %s: %w", path, err)
	}
	return n, h.Sum(nil), nil
}

// AddTarget adds the file at path as target name: it is hashed while it is
// read, linked (or copied) to targets/<sha256>.<name> and listed in the
// targets metadata, replacing a target of the same name. The change is
// signed and published by the next Commit.
func (r *Repo) AddTarget(name, path string) (*metadata.TargetFiles, error) {
	n, sum, err := HashFile(path)
	if err != nil {
		return nil, err
	}
	t := &metadata.TargetFiles{Length: n, Hashes: metadata.Hashes{"sha256": sum}, Path: name}
	if err := outfile.Copy(path, r.TargetPath(t), outfile.Options{Mode: 0o644, HardLink: true}); err != nil {
		return nil, fmt.Errorf("add target %s: %w", name, err)
	}
	r.Targets.Signed.Targets[name] = t
	return t, nil
}

// AddTargetBytes adds data as target name, like AddTarget.
func (r *Repo) AddTargetBytes(name string, data []byte) (*metadata.TargetFiles, error) {
	sum := sha256.Sum256(data)
	t := &metadata.TargetFiles{Length: int64(len(data)), Hashes: metadata.Hashes{"sha256": sum[:]}, Path: name}
	if err := outfile.WriteFile(r.TargetPath(t), data, outfile.Options{}); err != nil {
		return nil, fmt.Errorf("add target %s: %w", name, err)
	}
	r.Targets.Signed.Targets[name] = t
	return t, nil
}

// Commit describes one publication: which roles change and how they are
// signed.
type Commit struct {
	// Now gives the new versions (UNIX seconds, as upstream, or one more
	// than the last version when that is higher) and the expiry base.
	Now time.Time
	// Expires is the lifetime of each role that is re-signed.
	Expires map[string]time.Duration
	// Keys sign each role that is re-signed.
	Keys map[string][]*Key
	// Targets re-signs the targets metadata (new targets, a new
	// manifest); snapshot and timestamp are always re-signed.
	Targets bool
}

// Commit re-signs the roles c names and writes them in the order that
// keeps the repository consistent for a client reading it meanwhile:
// V.targets.json, V.snapshot.json, then timestamp.json.
func (r *Repo) Commit(c Commit) error {
	roles := []string{metadata.SNAPSHOT, metadata.TIMESTAMP}
	if c.Targets {
		roles = append([]string{metadata.TARGETS}, roles...)
	}
	for _, role := range roles {
		if len(c.Keys[role]) == 0 {
			return fmt.Errorf("sign %s: no key given", role)
		}
		if c.Expires[role] <= 0 {
			return fmt.Errorf("sign %s: no expiry given", role)
		}
	}
	version := func(old int64) int64 { return max(old+1, c.Now.Unix()) }
	expires := func(role string) time.Time { return c.Now.Add(c.Expires[role]).UTC().Truncate(time.Second) }
	if c.Targets {
		t := &r.Targets.Signed
		t.Version, t.Expires = version(t.Version), expires(metadata.TARGETS)
		if err := r.signWrite(metadata.TARGETS, c.Keys); err != nil {
			return err
		}
	}
	s := &r.Snapshot.Signed
	s.Version, s.Expires = version(s.Version), expires(metadata.SNAPSHOT)
	tb, err := r.Targets.ToBytes(false)
	if err != nil {
		return fmt.Errorf("encode targets: %w", err)
	}
	s.Meta = map[string]*metadata.MetaFiles{"targets.json": metaFile(r.Targets.Signed.Version, tb)}
	if err := r.signWrite(metadata.SNAPSHOT, c.Keys); err != nil {
		return err
	}
	ts := &r.Timestamp.Signed
	ts.Version, ts.Expires = version(ts.Version), expires(metadata.TIMESTAMP)
	sb, err := r.Snapshot.ToBytes(false)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	ts.Meta = map[string]*metadata.MetaFiles{"snapshot.json": metaFile(s.Version, sb)}
	return r.signWrite(metadata.TIMESTAMP, c.Keys)
}

// metaFile describes metadata bytes by version, length and SHA-256, so a
// client refuses metadata that is not exactly the one signed for.
func metaFile(version int64, data []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(data)
	return &metadata.MetaFiles{Version: version, Length: int64(len(data)), Hashes: metadata.Hashes{"sha256": sum[:]}}
}

func (r *Repo) signWrite(role string, keys map[string][]*Key) error {
	if err := r.Sign(role, keys[role]...); err != nil {
		return err
	}
	return r.WriteRole(role)
}

// Sign replaces the signatures of role by signatures with keys.
func (r *Repo) Sign(role string, keys ...*Key) error {
	sign := func(clear func(), s func(*Key) error) error {
		clear()
		for _, k := range keys {
			if err := s(k); err != nil {
				return fmt.Errorf("sign %s with key %s: %w", role, k.ID(), err)
			}
		}
		return nil
	}
	switch role {
	case metadata.ROOT:
		return sign(r.Root.ClearSignatures, func(k *Key) error { _, err := r.Root.Sign(k.Signer()); return err })
	case metadata.TARGETS:
		return sign(r.Targets.ClearSignatures, func(k *Key) error { _, err := r.Targets.Sign(k.Signer()); return err })
	case metadata.SNAPSHOT:
		return sign(r.Snapshot.ClearSignatures, func(k *Key) error { _, err := r.Snapshot.Sign(k.Signer()); return err })
	case metadata.TIMESTAMP:
		return sign(r.Timestamp.ClearSignatures, func(k *Key) error { _, err := r.Timestamp.Sign(k.Signer()); return err })
	}
	return fmt.Errorf("sign: unknown role %q", role)
}

// Bytes returns the JSON of role as it is written.
func (r *Repo) Bytes(role string) ([]byte, error) {
	switch role {
	case metadata.ROOT:
		return r.Root.ToBytes(true)
	case metadata.TARGETS:
		return r.Targets.ToBytes(false)
	case metadata.SNAPSHOT:
		return r.Snapshot.ToBytes(false)
	case metadata.TIMESTAMP:
		return r.Timestamp.ToBytes(false)
	}
	return nil, fmt.Errorf("unknown role %q", role)
}

// FileName returns the name of role's current metadata file:
// N.root.json, V.targets.json, V.snapshot.json or timestamp.json.
func (r *Repo) FileName(role string) string {
	switch role {
	case metadata.ROOT:
		return strconv.FormatInt(r.Root.Signed.Version, 10) + ".root.json"
	case metadata.TARGETS:
		return strconv.FormatInt(r.Targets.Signed.Version, 10) + ".targets.json"
	case metadata.SNAPSHOT:
		return strconv.FormatInt(r.Snapshot.Signed.Version, 10) + ".snapshot.json"
	}
	return role + ".json"
}

// WriteRole writes role's metadata file as it is now. Snapshot's
// meta must already describe the targets file, and timestamp's the
// snapshot file (Commit does both).
func (r *Repo) WriteRole(role string) error {
	data, err := r.Bytes(role)
	if err != nil {
		return err
	}
	if role == metadata.ROOT {
		return r.WriteRoot(data)
	}
	p := filepath.Join(r.Dir, MetadataDir, r.FileName(role))
	if err := outfile.WriteFile(p, data, outfile.Options{}); err != nil {
		return fmt.Errorf("write %s metadata: %w", role, err)
	}
	return nil
}

// WriteRoot writes signed root metadata as N.root.json, which clients
// fetch to rotate their root, and as root.json, the newest.
func (r *Repo) WriteRoot(data []byte) error {
	root, err := metadata.Root().FromBytes(data)
	if err != nil {
		return fmt.Errorf("read root metadata: %w", err)
	}
	r.Root = root
	md := filepath.Join(r.Dir, MetadataDir)
	for _, name := range []string{r.FileName(metadata.ROOT), "root.json"} {
		if err := outfile.WriteFile(filepath.Join(md, name), data, outfile.Options{}); err != nil {
			return fmt.Errorf("write root metadata: %w", err)
		}
	}
	return nil
}
