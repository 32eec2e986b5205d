package updater

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// ErrNotCached: the metadata cache lacks a role that Cached needs.
var ErrNotCached = errors.New("metadata not cached")

// Cached returns the verified view of the repository from the metadata
// cache alone, for the settings migrator at boot: it makes no request,
// and does not enforce expiry (upstream's migrator loads its repository
// with ExpirationEnforcement::Unsafe: before the settings are migrated
// the clock may be wrong and the network absent, and this metadata was
// fresh when the update agent refreshed it). Everything else is checked
// as in Refresh: the root (the cached one reached by verified rotations,
// or the shipped one), the signatures and thresholds of timestamp,
// snapshot and targets, and that each is the file the role above names.
// Targets are then read from Config.TargetsURL, typically a file URL of
// the directory the update agent saved them to.
func (c *Client) Cached() (*Repo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	unlock, err := c.cache.lock(context.Background())
	if err != nil {
		return nil, err
	}
	defer unlock()
	tm, raw, err := c.trusted()
	if err != nil {
		return nil, err
	}
	tm.RefTime = time.Time{} // nothing is expired at the zero time
	for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		data, err := c.cache.read(role)
		if err != nil {
			return nil, err
		}
		if data == nil {
			return nil, fmt.Errorf("load cached %s metadata from %s: %w", role, c.cache.dir, ErrNotCached)
		}
		switch role {
		case metadata.TIMESTAMP:
			_, err = tm.UpdateTimestamp(data)
		case metadata.SNAPSHOT:
			_, err = tm.UpdateSnapshot(data, false)
		case metadata.TARGETS:
			_, err = tm.UpdateDelegatedTargets(data, metadata.TARGETS, metadata.ROOT)
		}
		if err != nil {
			return nil, fmt.Errorf("load cached %s metadata: %w", role, c.classify(role, data, nil, err))
		}
		raw[role] = data
	}
	return newRepo(c, tm, raw), nil
}

// trusted starts the trusted metadata from the root to start from (see
// startRoot), and the map of the raw metadata it is built from. The caller
// holds c.mu and the cache lock.
func (c *Client) trusted() (*trustedmetadata.TrustedMetadata, map[string][]byte, error) {
	rootData, err := c.startRoot()
	if err != nil {
		return nil, nil, err
	}
	tm, err := trustedmetadata.New(rootData)
	if err != nil {
		return nil, nil, fmt.Errorf("load trusted root: %w", c.classify(metadata.ROOT, rootData, nil, err))
	}
	return tm, map[string][]byte{metadata.ROOT: rootData}, nil
}
