package updater

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// Size limits of metadata files (go-tuf's defaults) and of root rotations
// in one refresh.
const (
	MaxRootSize      = 512_000
	MaxTimestampSize = 16_384
	MaxSnapshotSize  = 2_000_000
	MaxTargetsSize   = 5_000_000
	MaxRootRotations = 256
)

// Config is what a Client needs.
type Config struct {
	// MetadataURL is the base URL of the repository's metadata
	// (…/<variant>/<arch>/metadata); TargetsURL that of its targets.
	// http, https and file URLs work.
	MetadataURL, TargetsURL string
	// TrustedRoot is the root metadata shipped in the image. A newer
	// root in the cache, reached by verified rotations, takes precedence.
	TrustedRoot []byte
	// CacheDir holds the verified metadata between refreshes, on
	// persistent storage; it is created if missing.
	CacheDir string
	// Fetch tunes downloads.
	Fetch FetchOptions
	// Now returns the time that expiry is checked against (time.Now).
	Now func() time.Time
	// Logger receives retries and ignored cache entries (discarded when
	// nil).
	Logger *slog.Logger
}

// Client refreshes one repository. Refresh may be called again later; it
// is serialised, so a Client may be shared.
type Client struct {
	cfg    Config
	fetch  *fetcher
	cache  *cache
	logger *slog.Logger
	mu     sync.Mutex // serialises Refresh and its cache writes
}

// New checks cfg and opens the cache. It makes no request.
func New(cfg Config) (*Client, error) {
	for _, u := range []struct{ name, v string }{{"metadata URL", cfg.MetadataURL}, {"targets URL", cfg.TargetsURL}} {
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https" && p.Scheme != "file") {
			return nil, fmt.Errorf("updater: %s %q: expected an http, https or file URL", u.name, u.v)
		}
	}
	if _, err := metadata.Root().FromBytes(cfg.TrustedRoot); err != nil {
		return nil, fmt.Errorf("updater: trusted root: %w", err)
	}
	c, err := openCache(cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, fetch: newFetcher(cfg.Fetch, logger), cache: c, logger: logger}, nil
}

// Refresh updates the trusted metadata as the TUF client workflow says:
// root (one rotation at a time), timestamp, snapshot, targets; checks
// signatures, versions against the cache, consistency and expiry; caches
// each verified file durably; and returns the verified view of the
// repository. Errors are the typed errors of this package where a check
// refused something.
func (c *Client) Refresh(ctx context.Context) (*Repo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	unlock, err := c.cache.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	now := c.cfg.Now().UTC()
	tm, raw, err := c.trusted()
	if err != nil {
		return nil, err
	}
	tm.RefTime = now
	if err := c.rotateRoot(ctx, tm, raw); err != nil {
		return nil, err
	}
	if r := tm.Root.Signed; r.IsExpired(now) {
		return nil, &ExpiredError{Role: metadata.ROOT, Expires: r.Expires, Now: now}
	}
	if err := c.loadTimestamp(ctx, tm, raw); err != nil {
		return nil, err
	}
	if err := c.loadSnapshot(ctx, tm, raw); err != nil {
		return nil, err
	}
	if err := c.loadTargets(ctx, tm, raw); err != nil {
		return nil, err
	}
	return newRepo(c, tm, raw), nil
}

// startRoot returns the root to start from: the cached one when it is
// newer than the shipped one (rotations already verified), else the
// shipped one, which is then cached.
func (c *Client) startRoot() ([]byte, error) {
	shipped := c.cfg.TrustedRoot
	cached, err := c.cache.read(metadata.ROOT)
	if err != nil {
		return nil, err
	}
	if cached != nil {
		cr, cerr := metadata.Root().FromBytes(cached)
		sr, _ := metadata.Root().FromBytes(shipped)
		switch {
		case cerr != nil:
			c.logger.Warn("cached root metadata unreadable, starting from the shipped root", "err", cerr)
		case cr.Signed.Version >= sr.Signed.Version:
			return cached, nil
		}
	}
	if err := c.cache.write(metadata.ROOT, shipped); err != nil {
		return nil, err
	}
	return shipped, nil
}

func (c *Client) metaURL(name string) string {
	return strings.TrimSuffix(c.cfg.MetadataURL, "/") + "/" + url.PathEscape(name)
}

// rotateRoot fetches N+1.root.json until the server has none and trusts
// each one that the old root's threshold and its own sign.
func (c *Client) rotateRoot(ctx context.Context, tm *trustedmetadata.TrustedMetadata, raw map[string][]byte) error {
	for i := 0; i < MaxRootRotations; i++ {
		from := tm.Root.Signed.Version
		name := strconv.FormatInt(from+1, 10) + ".root.json"
		data, err := c.fetch.bytes(ctx, c.metaURL(name), name, MaxRootSize)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("fetch root metadata: %w", err)
		}
		old := tm.Root
		if _, err := tm.UpdateRoot(data); err != nil {
			return &RootRotationError{From: from, To: from + 1, Err: err}
		}
		if err := c.cache.write(metadata.ROOT, data); err != nil {
			return err
		}
		raw[metadata.ROOT] = data
		// TUF 5.3.11: new timestamp or snapshot keys make the cached
		// files useless for rollback checks (an attacker may have
		// signed high versions with the old keys); drop them.
		if keysChanged(old, tm.Root, metadata.TIMESTAMP) || keysChanged(old, tm.Root, metadata.SNAPSHOT) {
			for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT} {
				if err := c.cache.remove(role); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func keysChanged(a, b *metadata.Metadata[metadata.RootType], role string) bool {
	ra, rb := a.Signed.Roles[role], b.Signed.Roles[role]
	if ra == nil || rb == nil || ra.Threshold != rb.Threshold || len(ra.KeyIDs) != len(rb.KeyIDs) {
		return true
	}
	for i := range ra.KeyIDs {
		if ra.KeyIDs[i] != rb.KeyIDs[i] {
			return true
		}
	}
	return false
}

func (c *Client) loadTimestamp(ctx context.Context, tm *trustedmetadata.TrustedMetadata, raw map[string][]byte) error {
	local, err := c.cache.read(metadata.TIMESTAMP)
	if err != nil {
		return err
	}
	if local != nil {
		// An expired cached timestamp still counts for the version check.
		if _, err := tm.UpdateTimestamp(local); err != nil && !errors.As(err, new(*metadata.ErrExpiredMetadata)) {
			c.logger.Warn("cached timestamp metadata not usable, ignored", "err", err)
		}
	}
	before := tm.Timestamp
	data, err := c.fetch.bytes(ctx, c.metaURL("timestamp.json"), "timestamp.json", MaxTimestampSize)
	if err != nil {
		return fmt.Errorf("fetch timestamp metadata: %w", err)
	}
	switch _, err := tm.UpdateTimestamp(data); {
	case errors.As(err, new(*metadata.ErrEqualVersionNumber)):
		// The one already trusted; it is checked for expiry below.
		raw[metadata.TIMESTAMP] = local
	case err != nil:
		return c.classify(metadata.TIMESTAMP, data, before, err)
	default:
		if err := c.cache.write(metadata.TIMESTAMP, data); err != nil {
			return err
		}
		raw[metadata.TIMESTAMP] = data
	}
	if ts := tm.Timestamp.Signed; ts.IsExpired(tm.RefTime) {
		return &ExpiredError{Role: metadata.TIMESTAMP, Expires: ts.Expires, Now: tm.RefTime}
	}
	return nil
}

func (c *Client) loadSnapshot(ctx context.Context, tm *trustedmetadata.TrustedMetadata, raw map[string][]byte) error {
	if local, err := c.cache.read(metadata.SNAPSHOT); err != nil {
		return err
	} else if local != nil {
		if _, err := tm.UpdateSnapshot(local, true); err == nil {
			raw[metadata.SNAPSHOT] = local
			return nil // the cached snapshot is the one the timestamp names
		}
	}
	before := tm.Snapshot
	meta := tm.Timestamp.Signed.Meta["snapshot.json"]
	if meta == nil {
		return fmt.Errorf("%w: timestamp names no snapshot.json", ErrBadMetadata)
	}
	name := c.versioned(tm, meta.Version, "snapshot.json")
	data, err := c.fetch.bytes(ctx, c.metaURL(name), name, limit(meta.Length, MaxSnapshotSize))
	if err != nil {
		return fmt.Errorf("fetch snapshot metadata: %w", err)
	}
	if _, err := tm.UpdateSnapshot(data, false); err != nil {
		return c.classify(metadata.SNAPSHOT, data, before, err)
	}
	raw[metadata.SNAPSHOT] = data
	return c.cache.write(metadata.SNAPSHOT, data)
}

func (c *Client) loadTargets(ctx context.Context, tm *trustedmetadata.TrustedMetadata, raw map[string][]byte) error {
	if local, err := c.cache.read(metadata.TARGETS); err != nil {
		return err
	} else if local != nil {
		if _, err := tm.UpdateDelegatedTargets(local, metadata.TARGETS, metadata.ROOT); err == nil {
			raw[metadata.TARGETS] = local
			return nil
		}
	}
	meta := tm.Snapshot.Signed.Meta["targets.json"]
	if meta == nil {
		return fmt.Errorf("%w: snapshot names no targets.json", ErrBadMetadata)
	}
	name := c.versioned(tm, meta.Version, "targets.json")
	data, err := c.fetch.bytes(ctx, c.metaURL(name), name, limit(meta.Length, MaxTargetsSize))
	if err != nil {
		return fmt.Errorf("fetch targets metadata: %w", err)
	}
	if _, err := tm.UpdateDelegatedTargets(data, metadata.TARGETS, metadata.ROOT); err != nil {
		return c.classify(metadata.TARGETS, data, nil, err)
	}
	raw[metadata.TARGETS] = data
	return c.cache.write(metadata.TARGETS, data)
}

// versioned names a metadata file of a consistent-snapshot repository.
func (c *Client) versioned(tm *trustedmetadata.TrustedMetadata, v int64, name string) string {
	if !tm.Root.Signed.ConsistentSnapshot {
		return name
	}
	return strconv.FormatInt(v, 10) + "." + name
}

func limit(signed, max int64) int64 {
	if signed > 0 {
		return signed
	}
	return max
}

// classify turns go-tuf's refusal of role's new metadata data into this
// package's typed errors. before is the trusted metadata of the role
// before the update, when the check compares versions with it.
func (c *Client) classify(role string, data []byte, before any, err error) error {
	switch {
	case errors.As(err, new(*metadata.ErrUnsignedMetadata)):
		return &SignatureError{Role: role, Err: err}
	case errors.As(err, new(*metadata.ErrExpiredMetadata)):
		return &ExpiredError{Role: role, Expires: expires(role, data), Now: c.cfg.Now().UTC()}
	case errors.As(err, new(*metadata.ErrLengthOrHashMismatch)):
		return &MixAndMatchError{Role: role, Detail: err.Error()}
	case errors.As(err, new(*metadata.ErrBadVersionNumber)):
		return versionError(role, data, before, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrBadMetadata, role, err)
}

// versionError tells a rollback (a version lower than the trusted one)
// from metadata that is not the version the role above named.
func versionError(role string, data []byte, before any, err error) error {
	switch role {
	case metadata.TIMESTAMP:
		ts, perr := metadata.Timestamp().FromBytes(data)
		old, _ := before.(*metadata.Metadata[metadata.TimestampType])
		if perr != nil || old == nil {
			break
		}
		if ts.Signed.Version < old.Signed.Version {
			return &RollbackError{Role: metadata.TIMESTAMP, Trusted: old.Signed.Version, Got: ts.Signed.Version}
		}
		if n, o := ts.Signed.Meta["snapshot.json"], old.Signed.Meta["snapshot.json"]; n != nil && o != nil && n.Version < o.Version {
			return &RollbackError{Role: metadata.SNAPSHOT, Trusted: o.Version, Got: n.Version}
		}
	case metadata.SNAPSHOT:
		s, perr := metadata.Snapshot().FromBytes(data)
		old, _ := before.(*metadata.Metadata[metadata.SnapshotType])
		if perr == nil && old != nil {
			for name, o := range old.Signed.Meta {
				if n := s.Signed.Meta[name]; n != nil && n.Version < o.Version {
					return &RollbackError{Role: strings.TrimSuffix(name, ".json"), Trusted: o.Version, Got: n.Version}
				}
			}
		}
	}
	return &MixAndMatchError{Role: role, Detail: err.Error()}
}

// expires reads the expiry of role's metadata data (zero if unreadable).
func expires(role string, data []byte) time.Time {
	switch role {
	case metadata.ROOT:
		if m, err := metadata.Root().FromBytes(data); err == nil {
			return m.Signed.Expires
		}
	case metadata.TIMESTAMP:
		if m, err := metadata.Timestamp().FromBytes(data); err == nil {
			return m.Signed.Expires
		}
	case metadata.SNAPSHOT:
		if m, err := metadata.Snapshot().FromBytes(data); err == nil {
			return m.Signed.Expires
		}
	case metadata.TARGETS:
		if m, err := metadata.Targets().FromBytes(data); err == nil {
			return m.Signed.Expires
		}
	}
	return time.Time{}
}
