package repo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/petrel-os/petrel/sources/outfile"
	"github.com/petrel-os/petrel/sources/tufrepo"
)

// RootFile is the name of the signed root metadata in a keys directory.
const RootFile = "root.json"

// RootLifetime is how long a development root is valid (upstream: 52
// weeks).
const RootLifetime = 52 * 7 * 24 * time.Hour

// ErrKeys marks missing, mismatched or expired keys.
var ErrKeys = errors.New("signing keys")

// KeyFile returns the name of role's private key in a keys directory.
func KeyFile(role string) string { return role + ".pem" }

// Keys locates the trusted root and the private keys of the roles: each
// file in Dir unless Files names another path for it (by role, and
// RootFile for the root metadata).
type Keys struct {
	Dir   string
	Files map[string]string
}

// Path returns where the file of role (or RootFile) is.
func (k Keys) Path(name string) string {
	if p := k.Files[name]; p != "" {
		return p
	}
	if name != RootFile {
		name = KeyFile(name)
	}
	return filepath.Join(k.Dir, name)
}

// CreateKeys makes a development root of trust in dir: an ed25519 key per
// role and root.json (version 1, consistent snapshots, threshold 1,
// expiring after RootLifetime) signed by the root key. It refuses to
// overwrite existing keys. Keys are mode 0600 in a 0700 directory.
func CreateKeys(dir string, now time.Time) error {
	for _, name := range append(slices.Clone(tufrepo.Roles), RootFile) {
		p := Keys{Dir: dir}.Path(name)
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%w: create keys in %s: %s exists; remove the directory to start a new root of trust", ErrKeys, dir, p)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create keys directory: %w", err)
	}
	keys, err := tufrepo.NewKeys()
	if err != nil {
		return err
	}
	rootJSON, err := tufrepo.NewSignedRoot(keys, now.Add(RootLifetime))
	if err != nil {
		return err
	}
	for _, role := range tufrepo.Roles {
		p := filepath.Join(dir, KeyFile(role))
		if err := outfile.WriteFile(p, keys[role][0].PEM(), outfile.Options{Mode: 0o600, NoReplace: true}); err != nil {
			return fmt.Errorf("write %s key: %w", role, err)
		}
	}
	return outfile.WriteFile(filepath.Join(dir, RootFile), rootJSON, outfile.Options{NoReplace: true})
}

// Root reads the signed root metadata.
func (k Keys) Root() ([]byte, *metadata.Metadata[metadata.RootType], error) {
	p := k.Path(RootFile)
	data, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("%w: no root metadata at %s (create development keys with `buildctl repo keys`)", ErrKeys, p)
		}
		return nil, nil, fmt.Errorf("%w: read root metadata: %w", ErrKeys, err)
	}
	root, err := metadata.Root().FromBytes(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: read root metadata %s: %w", ErrKeys, p, err)
	}
	if err := root.VerifyDelegate(metadata.ROOT, root); err != nil {
		return nil, nil, fmt.Errorf("%w: root metadata %s is not signed by its own root keys: %w", ErrKeys, p, err)
	}
	return data, root, nil
}

// Signers loads the private keys of roles and checks each against the
// root: the root must not be expired at now, and every key must be one
// the root names for its role.
func (k Keys) Signers(now time.Time, roles ...string) (map[string][]*tufrepo.Key, error) {
	_, root, err := k.Root()
	if err != nil {
		return nil, err
	}
	if root.Signed.IsExpired(now) {
		return nil, fmt.Errorf("%w: root metadata %s expired at %s: its keys can no longer sign; make a new root of trust",
			ErrKeys, k.Path(RootFile), root.Signed.Expires.Format(time.RFC3339))
	}
	out := map[string][]*tufrepo.Key{}
	var errs []error
	for _, role := range roles {
		p := k.Path(role)
		key, err := tufrepo.LoadKey(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				err = fmt.Errorf("no key file %s", p)
			}
			errs = append(errs, fmt.Errorf("%w: %s key: %w", ErrKeys, role, err))
			continue
		}
		if !slices.Contains(root.Signed.Roles[role].KeyIDs, key.ID()) {
			errs = append(errs, fmt.Errorf("%w: %s key %s (id %.12s…) is not a key of role %s in %s",
				ErrKeys, role, p, key.ID(), role, k.Path(RootFile)))
			continue
		}
		out[role] = []*tufrepo.Key{key}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
