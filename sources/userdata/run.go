package userdata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// Settings is where user data goes: a PATCH of a settings object into a
// transaction. *apiclient.Client satisfies it.
type Settings interface {
	Set(ctx context.Context, tx string, settings any) error
}

// Config configures Run.
type Config struct {
	Providers   []Provider // tried in order; later ones override earlier keys
	API         Settings
	Transaction string // the launch transaction
	// Marker is created after a successful run; if it exists Run does
	// nothing. "" disables the marker.
	Marker string
	Logger *slog.Logger
}

// Result says what Run did.
type Result struct {
	AlreadyRan bool
	Applied    []string // names of providers whose settings were PATCHed
}

// Run reads every provider in order, parses and validates its user data
// and PATCHes the settings into the launch transaction. A provider that
// fails, or user data that does not parse, stops the run before the marker
// is written, so the next boot tries again.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Marker != "" {
		if _, err := os.Stat(cfg.Marker); err == nil {
			log.Info("user data already applied on this instance", "marker", cfg.Marker)
			res.AlreadyRan = true
			return res, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return res, fmt.Errorf("check marker: %w", err)
		}
	}
	for _, p := range cfg.Providers {
		data, err := p.UserData(ctx)
		if err != nil {
			return res, fmt.Errorf("user data from %s: %w", p.Name(), err)
		}
		if data == nil {
			log.Info("no user data", "provider", p.Name())
			continue
		}
		s, err := Parse(p.Name(), data)
		if err != nil {
			return res, err
		}
		if err := cfg.API.Set(ctx, cfg.Transaction, s); err != nil {
			return res, fmt.Errorf("store user data from %s in transaction %q: %w", p.Name(), cfg.Transaction, err)
		}
		log.Info("applied user data", "provider", p.Name(), "tx", cfg.Transaction)
		res.Applied = append(res.Applied, p.Name())
	}
	if cfg.Marker != "" {
		if err := writeMarker(cfg.Marker); err != nil {
			return res, err
		}
	}
	return res, nil
}

func writeMarker(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory of marker %q: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create marker: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync marker %q: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close marker %q: %w", path, err)
	}
	return nil
}
