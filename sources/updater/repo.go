package updater

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/petrel-os/petrel/sources/manifest"
)

// Repo is the verified view of a repository after a Refresh: the signed
// targets and the versions and expiry of the roles. It does not change
// and is safe for concurrent use.
type Repo struct {
	c          *Client
	consistent bool
	targets    map[string]*metadata.TargetFiles
	roles      []RoleInfo
	raw        map[string][]byte // the metadata files it was built from, by role
}

// RoleInfo is a trusted role's version and expiry.
type RoleInfo struct {
	Role    string
	Version int64
	Expires time.Time
}

// Target is a target as the signed targets metadata lists it.
type Target struct {
	Name   string
	Length int64
	// Hashes are hex digests by algorithm ("sha256", "sha512").
	Hashes map[string]string
}

func newRepo(c *Client, tm *trustedmetadata.TrustedMetadata, raw map[string][]byte) *Repo {
	t := tm.Targets[metadata.TARGETS]
	return &Repo{
		c:          c,
		raw:        raw,
		consistent: tm.Root.Signed.ConsistentSnapshot,
		targets:    t.Signed.Targets,
		roles: []RoleInfo{
			{metadata.ROOT, tm.Root.Signed.Version, tm.Root.Signed.Expires},
			{metadata.TIMESTAMP, tm.Timestamp.Signed.Version, tm.Timestamp.Signed.Expires},
			{metadata.SNAPSHOT, tm.Snapshot.Signed.Version, tm.Snapshot.Signed.Expires},
			{metadata.TARGETS, t.Signed.Version, t.Signed.Expires},
		},
	}
}

// Roles returns the trusted roles: root, timestamp, snapshot, targets.
func (r *Repo) Roles() []RoleInfo { return slices.Clone(r.roles) }

// Target returns the signed description of target name.
func (r *Repo) Target(name string) (Target, error) {
	t, ok := r.targets[name]
	if !ok {
		return Target{}, fmt.Errorf("%w: %q is not in the signed targets", ErrUnknownTarget, name)
	}
	return target(t), nil
}

func target(t *metadata.TargetFiles) Target {
	h := map[string]string{}
	for alg, sum := range t.Hashes {
		h[alg] = hex.EncodeToString(sum)
	}
	return Target{Name: t.Path, Length: t.Length, Hashes: h}
}

// Targets returns every signed target, by name.
func (r *Repo) Targets() []Target {
	var ts []Target
	for _, t := range r.targets {
		ts = append(ts, target(t))
	}
	slices.SortFunc(ts, func(a, b Target) int { return strings.Compare(a.Name, b.Name) })
	return ts
}

// URL returns where target t is fetched from: <targets URL>/<sha256>.<name>
// in a consistent-snapshot repository.
func (r *Repo) URL(t Target) string {
	name := t.Name
	if r.consistent {
		sum := t.Hashes["sha256"]
		if sum == "" {
			sum = t.Hashes["sha512"]
		}
		name = sum + "." + name
	}
	return strings.TrimSuffix(r.c.cfg.TargetsURL, "/") + "/" + url.PathEscape(name)
}

// Download streams target name to w and checks it against the signed
// length and hashes while the bytes flow: it stops reading at the signed
// length (a longer file is a LengthError) and, at the end, compares every
// signed hash it knows (a HashError names the expected and the computed
// digest). Memory stays bounded whatever the size. Bytes reach w before
// they are verified: w's content is trustworthy only when Download returns
// nil. An interrupted download is resumed with Range.
func (r *Repo) Download(ctx context.Context, name string, w io.Writer) error {
	t, ok := r.targets[name]
	if !ok {
		return fmt.Errorf("download %s: %w: not in the signed targets", name, ErrUnknownTarget)
	}
	algs := map[string]func() hash.Hash{"sha256": sha256.New, "sha512": sha512.New}
	hs := map[string]hash.Hash{}
	writers := []io.Writer{w}
	for alg := range t.Hashes {
		if mk, ok := algs[alg]; ok {
			hs[alg] = mk()
			writers = append(writers, hs[alg])
		}
	}
	if len(hs) == 0 {
		return fmt.Errorf("download %s: %w: no sha256 or sha512 hash is signed for it", name, ErrBadMetadata)
	}
	n, err := r.c.fetch.fetch(ctx, r.URL(target(t)), name, t.Length, true, io.MultiWriter(writers...))
	if err != nil {
		return fmt.Errorf("download %s: %w", name, err)
	}
	if n != t.Length {
		return fmt.Errorf("download %s: %w", name, &LengthError{Name: name, Want: t.Length, Got: n})
	}
	for alg, h := range hs {
		if got := h.Sum(nil); !bytes.Equal(got, t.Hashes[alg]) {
			return fmt.Errorf("download %s: %w", name, &HashError{Name: name, Algorithm: alg,
				Want: hex.EncodeToString(t.Hashes[alg]), Got: hex.EncodeToString(got)})
		}
	}
	return nil
}

// Manifest downloads and parses the signed manifest.json.
func (r *Repo) Manifest(ctx context.Context) (*manifest.Manifest, error) {
	t, err := r.Target(manifest.TargetName)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	if t.Length > manifest.MaxSize {
		return nil, fmt.Errorf("read manifest: signed length %d exceeds the limit of %d bytes", t.Length, manifest.MaxSize)
	}
	var b bytes.Buffer
	if err := r.Download(ctx, manifest.TargetName, &b); err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	m, err := manifest.Parse(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	return m, nil
}
