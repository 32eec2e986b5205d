package settings

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/datastore"
)

// StorewolfConfig configures Storewolf.
type StorewolfConfig struct {
	// Base is the datastore base directory holding the "current" link,
	// e.g. /var/lib/petrel/datastore.
	Base string
	// Version is the OS version "X.Y.Z" used when a datastore is created.
	Version string
	// Transaction receives the default settings; "" means
	// api.LaunchTransaction.
	Transaction string
	Logger      *slog.Logger
}

// StorewolfResult counts what Storewolf wrote.
type StorewolfResult struct {
	Created  bool // a new datastore was created
	Settings int  // default settings staged in the launch transaction
	Metadata int  // metadata values written to live
	Other    int  // services and configuration-files values written to live
}

// Storewolf prepares the datastore at boot, as upstream's storewolf: it
// creates the datastore if missing (refusing one of another version than
// cfg.Version: the migrator must move it first, and defaults of this
// version must not land in another version's datastore, whose bank may
// boot again), deletes every pending transaction,
// stages default settings not already live in the launch transaction, and
// writes metadata, services and configuration-files not already present
// directly to live. Defaults never overwrite existing values.
func Storewolf(ctx context.Context, cfg StorewolfConfig, d *Defaults) (StorewolfResult, error) {
	var res StorewolfResult
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tx := cfg.Transaction
	if tx == "" {
		tx = api.LaunchTransaction
	}
	current := filepath.Join(cfg.Base, "current")
	if _, err := os.Stat(filepath.Join(current, "live")); errors.Is(err, os.ErrNotExist) {
		if _, err := datastore.Create(cfg.Base, cfg.Version); err != nil {
			return res, err
		}
		res.Created = true
		log.Info("created datastore", "base", cfg.Base, "version", cfg.Version)
	} else if err != nil {
		return res, fmt.Errorf("check datastore %q: %w", current, err)
	} else if err := checkVersion(cfg.Base, cfg.Version); err != nil {
		return res, err
	}
	store, err := datastore.Open(ctx, current)
	if err != nil {
		return res, err
	}
	defer store.Close()

	txs, err := store.ListTransactions(ctx)
	if err != nil {
		return res, err
	}
	for _, t := range txs {
		if _, err := store.DeleteTransaction(ctx, t); err != nil {
			return res, err
		}
		log.Info("deleted stale transaction", "tx", t)
	}

	settings, err := Flatten([]string{"settings"}, d.Settings)
	if err != nil {
		return res, err
	}
	missing, err := notLive(ctx, store, settings)
	if err != nil {
		return res, err
	}
	if len(missing) > 0 {
		if err := store.SetMany(ctx, missing, datastore.Pending(tx)); err != nil {
			return res, fmt.Errorf("stage default settings: %w", err)
		}
	}
	res.Settings = len(missing)

	var rest []datastore.KeyValue
	for _, section := range []string{"services", "configuration-files"} {
		t, _ := d.Raw[section].(map[string]any)
		kvs, err := Flatten([]string{section}, t)
		if err != nil {
			return res, err
		}
		rest = append(rest, kvs...)
	}
	if rest, err = notLive(ctx, store, rest); err != nil {
		return res, err
	}
	if len(rest) > 0 {
		if err := store.SetMany(ctx, rest, datastore.Live()); err != nil {
			return res, fmt.Errorf("write default services and configuration files: %w", err)
		}
	}
	res.Other = len(rest)

	n, err := writeMetadata(ctx, store, d.Metadata)
	res.Metadata = n
	if err != nil {
		return res, err
	}
	log.Info("loaded defaults", "settings", res.Settings, "metadata", res.Metadata, "other", res.Other, "tx", tx)
	return res, nil
}

// ErrVersion: the datastore is of another version than the OS.
var ErrVersion = errors.New("datastore of another version")

// checkVersion refuses a datastore whose link chain names another version
// than version.
func checkVersion(base, version string) error {
	c, err := datastore.ReadChain(base)
	if err != nil {
		return err
	}
	if c.Version != version {
		return fmt.Errorf("%w: %s is version %s, the OS is %s: the settings migrator (migrator.service) has not moved it",
			ErrVersion, filepath.Join(base, datastore.CurrentLink), c.Version, version)
	}
	return nil
}

func notLive(ctx context.Context, store *datastore.Store, kvs []datastore.KeyValue) ([]datastore.KeyValue, error) {
	var out []datastore.KeyValue
	for _, kv := range kvs {
		_, err := store.Get(ctx, kv.Key, datastore.Live())
		switch {
		case errors.Is(err, datastore.ErrNotFound):
			out = append(out, kv)
		case err != nil:
			return nil, err
		}
	}
	return out, nil
}

// writeMetadata walks [metadata]: each string or list leaf at path p is
// metadata p[-1] on data key p[:-1]. Values already present are kept.
func writeMetadata(ctx context.Context, store *datastore.Store, md map[string]any) (int, error) {
	n := 0
	var walk func(path []string, t map[string]any) error
	walk = func(path []string, t map[string]any) error {
		for _, k := range sortedKeys(t) {
			p := with(path, k)
			if sub, ok := t[k].(map[string]any); ok {
				if err := walk(p, sub); err != nil {
					return err
				}
				continue
			}
			if len(p) < 2 {
				return fmt.Errorf("metadata.%s: needs a data key and a metadata name", JoinPath(p))
			}
			data, err := datastore.KeyFromSegments(datastore.DataKey, p[:len(p)-1])
			if err != nil {
				return fmt.Errorf("metadata.%s: %w", JoinPath(p), err)
			}
			meta, err := datastore.KeyFromSegments(datastore.MetaKey, p[len(p)-1:])
			if err != nil {
				return fmt.Errorf("metadata.%s: %w", JoinPath(p), err)
			}
			if _, err := store.GetMetadataRaw(ctx, meta, data); err == nil {
				continue
			} else if !errors.Is(err, datastore.ErrNotFound) {
				return err
			}
			v, err := encodeValue(t[k])
			if err != nil {
				return fmt.Errorf("metadata.%s: %w", JoinPath(p), err)
			}
			if err := store.SetMetadata(ctx, meta, data, v); err != nil {
				return err
			}
			n++
		}
		return nil
	}
	return n, walk(nil, md)
}
