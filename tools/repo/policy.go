package repo

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/petrel-os/petrel/sources/waves"
)

// ErrPolicy marks a bad expiration policy.
var ErrPolicy = errors.New("invalid expiration policy")

// Expiration is how long each signed role stays valid after signing.
type Expiration map[string]time.Duration

// DefaultExpiration is upstream's policy: targets and snapshot 2 weeks,
// timestamp 1 week.
func DefaultExpiration() Expiration {
	const week = 7 * 24 * time.Hour
	return Expiration{metadata.TARGETS: 2 * week, metadata.SNAPSHOT: 2 * week, metadata.TIMESTAMP: week}
}

// LoadExpiration reads a policy file in upstream's keys:
// snapshot_expiration, targets_expiration, timestamp_expiration = "N
// unit". All three are required; errors name the file and key.
func LoadExpiration(path string) (Expiration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read expiration policy: %w", err)
	}
	var f map[string]any
	if _, err := toml.Decode(string(data), &f); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrPolicy, path, err)
	}
	e := Expiration{}
	var errs []error
	for _, role := range []string{metadata.SNAPSHOT, metadata.TARGETS, metadata.TIMESTAMP} {
		key := role + "_expiration"
		v, ok := f[key]
		delete(f, key)
		s, isStr := v.(string)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%w: %s: %s: missing", ErrPolicy, path, key))
			continue
		case !isStr:
			errs = append(errs, fmt.Errorf("%w: %s: %s: expected a string such as \"2 weeks\"", ErrPolicy, path, key))
			continue
		}
		d, err := waves.ParseDuration(s)
		if err == nil && d <= 0 {
			err = fmt.Errorf("must be longer than 0")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %s: %w", ErrPolicy, path, key, err))
			continue
		}
		e[role] = d
	}
	for k := range f {
		errs = append(errs, fmt.Errorf("%w: %s: %s: unknown key", ErrPolicy, path, k))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return e, nil
}
