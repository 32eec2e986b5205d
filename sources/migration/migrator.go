package migration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"

	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/settings"
)

// Config is what Run needs.
type Config struct {
	// Base is the datastore base directory, the one holding current
	// (/var/lib/petrel/datastore).
	Base string
	// To is the version to migrate to: the running OS's version.
	To manifest.Version
	// Source gives the manifest and the migration files.
	Source Source
	// Functions are the Go functions migrations may call (Builtins when
	// nil).
	Functions Functions
	// Validate checks the settings of the result (settings.Validate
	// when nil).
	Validate func(map[string]any) error
	// Logger is told what happens (discarded when nil).
	Logger *slog.Logger

	// step, when set, is called before each step that writes (tests use
	// it to stop the migrator there).
	step func(name string)
}

// Result says what Run did.
type Result struct {
	// From and To are the datastore's versions before and after; empty
	// when there is no datastore yet.
	From, To string
	// Direction of the migrations, when any ran.
	Direction Direction
	// Migrations that ran, in order.
	Migrations []string
	// Dir is the versioned directory current names afterwards.
	Dir string
	// Relinked is true when the links moved to the same directory (no
	// migrations between the versions).
	Relinked bool
	// Removed lists the old links and directories removed.
	Removed []string
}

// Run brings the datastore under cfg.Base to version cfg.To. With no
// datastore yet (a first boot) or the datastore already at cfg.To it
// does nothing (except removing leftovers of an interrupted run). Else it
// finds the migrations between the versions in the manifest's map (see
// manifest.Migrations.Chain), reads and checks every one of them, reads
// the whole datastore (live, metadata, every pending transaction) with
// the store locked, applies the migrations forward or backward in
// memory, checks the resulting settings against the model, writes them
// into a new directory v<To>_<random> and makes it durable, and only
// then moves the links vX.Y.Z, vX.Y, vX and current, each with a rename
// and an fsync of the base. Until the link that current reaches moves,
// current names the old datastore, untouched; after it, the new one,
// complete. With an empty list of migrations the links move to the
// datastore's own directory. Last, directories and links of versions
// other than the two are removed, so old copies cannot fill PRIVATE.
//
// Any error before the links move leaves the datastore as it was (the
// new directory, if made, is removed at the next run).
func Run(ctx context.Context, cfg Config) (Result, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Functions == nil {
		cfg.Functions = Builtins()
	}
	if cfg.Validate == nil {
		cfg.Validate = settings.Validate
	}
	if cfg.step == nil {
		cfg.step = func(string) {}
	}
	to := cfg.To.String()
	if _, _, _, err := datastore.VersionLinks(to); err != nil {
		return Result{}, fmt.Errorf("migrate to %s: %w", to, err)
	}
	chain, err := datastore.ReadChain(cfg.Base)
	if errors.Is(err, datastore.ErrNoDatastore) {
		log.Info("no datastore yet; nothing to migrate", "base", cfg.Base)
		return Result{}, nil
	}
	if err != nil {
		return Result{}, err
	}
	res := Result{From: chain.Version, To: to, Dir: chain.Dir}
	from, err := manifest.ParseVersion(chain.Version)
	if err != nil {
		return res, fmt.Errorf("datastore version: %w", err)
	}
	if from.Compare(cfg.To) == 0 {
		log.Info("datastore already at the OS version", "version", to)
		res.Removed, err = cleanup(cfg.Base, nil, cfg.step)
		return res, err
	}
	if cfg.Source == nil {
		return res, errors.New("migrate datastore: no migration source")
	}
	man, err := cfg.Source.Manifest(ctx)
	if err != nil {
		return res, fmt.Errorf("read manifest: %w", err)
	}
	names, err := man.Migrations.Chain(from, cfg.To)
	if err != nil {
		return res, fmt.Errorf("migrate datastore from %s to %s: %w", from, cfg.To, err)
	}
	res.Direction = Forward
	if cfg.To.Less(from) {
		res.Direction = Backward
	}
	var ms []*Migration
	for _, name := range names {
		data, err := cfg.Source.Migration(ctx, name)
		if err != nil {
			return res, err
		}
		m, err := Parse(name, data)
		if err != nil {
			return res, err
		}
		if err := m.Check(cfg.Functions); err != nil {
			return res, err
		}
		ms = append(ms, m)
	}
	res.Migrations = names
	log.Info("migrating datastore", "from", from, "to", to, "direction", res.Direction, "migrations", names)

	if len(ms) == 0 {
		if err := relink(cfg.Base, to, chain.Dir, cfg.step); err != nil {
			return res, err
		}
		res.Relinked = true
	} else {
		dir, err := migrate(ctx, cfg, chain, ms, res.Direction)
		if err != nil {
			return res, err
		}
		res.Dir = dir
	}
	log.Info("datastore migrated", "from", from, "to", to, "dir", res.Dir)
	res.Removed, err = cleanup(cfg.Base, []string{chain.Patch, chain.Minor, chain.Major}, cfg.step)
	if err != nil {
		return res, fmt.Errorf("remove old datastores (the migration is done): %w", err)
	}
	for _, r := range res.Removed {
		log.Info("removed old datastore entry", "name", r)
	}
	return res, nil
}

// migrate runs ms over the datastore of chain and links the result; it
// returns the new directory's name.
func migrate(ctx context.Context, cfg Config, chain datastore.Chain, ms []*Migration, dir Direction) (string, error) {
	srcDir := filepath.Join(cfg.Base, chain.Dir)
	// The source stays open, and so locked, until the links have moved.
	src, err := datastore.Open(ctx, srcDir)
	if err != nil {
		return "", fmt.Errorf("open datastore %s: %w", chain.Dir, err)
	}
	defer src.Close()
	d, err := ReadData(ctx, src)
	if err != nil {
		return "", fmt.Errorf("read datastore %s: %w", chain.Dir, err)
	}
	saves, err := ReadSaves(srcDir)
	if err != nil {
		return "", err
	}
	if err := Apply(d, saves, ms, dir, cfg.Functions); err != nil {
		return "", err
	}
	if err := checkSettings(d, cfg.Validate); err != nil {
		return "", err
	}
	to := cfg.To.String()
	cfg.step("create directory")
	name, err := datastore.NewDir(cfg.Base, to)
	if err != nil {
		return "", err
	}
	newDir := filepath.Join(cfg.Base, name)
	linked := false
	defer func() {
		if !linked {
			os.RemoveAll(newDir) // never linked: nothing names it
		}
	}()
	cfg.step("write saved values")
	if err := WriteSaves(newDir, saves); err != nil {
		return "", err
	}
	cfg.step("write values")
	if err := datastore.WriteContents(newDir, d.Contents()); err != nil {
		return "", err
	}
	cfg.step("open result")
	if err := checkOpens(ctx, newDir, d); err != nil {
		return "", err
	}
	if err := relink(cfg.Base, to, name, cfg.step); err != nil {
		linked = true // a link may name it: the next run's cleanup decides
		return "", err
	}
	linked = true
	return name, nil
}

// checkSettings validates the live settings and those of each pending
// transaction against the model.
func checkSettings(d *Data, validate func(map[string]any) error) error {
	var errs []error
	for _, t := range d.trees() {
		where := "live settings"
		if t.tx != "" {
			where = fmt.Sprintf("settings pending in transaction %q", t.tx)
		}
		doc, err := Settings(t.values)
		if err == nil {
			err = validate(doc)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("the migrated settings do not fit the settings model: %w", err)
	}
	return nil
}

// checkOpens opens the written datastore as the API server will and
// compares what it reads with d.
func checkOpens(ctx context.Context, dir string, d *Data) error {
	s, err := datastore.Open(ctx, dir)
	if err != nil {
		return fmt.Errorf("open migrated datastore: %w", err)
	}
	back, err := ReadData(ctx, s)
	cerr := s.Close()
	if err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("read migrated datastore: %w", err)
	}
	if diff := Diff(d, back); diff != "" {
		return fmt.Errorf("the migrated datastore reads back differently: %s", diff)
	}
	return nil
}

// relink moves the links of version to dir, one at a time.
func relink(base, version, dir string, step func(string)) error {
	links, err := datastore.LinkSteps(version, dir)
	if err != nil {
		return err
	}
	for _, l := range links {
		step("link " + l.Name)
		if err := datastore.Link(base, l.Name, l.Target); err != nil {
			return err
		}
	}
	return nil
}

var (
	versionLinkRE = regexp.MustCompile(`^v(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*)){0,2}$`)
	versionDirRE  = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)_[A-Za-z0-9]+$`)
)

// cleanup removes from base what no kept link leads to. With keep nil
// (nothing migrated) only leftovers of an interrupted run go: temporary
// links, and versioned directories that no link names. With keep (the
// links of the version migrated from), every version link outside the
// chains of current and of keep goes too, and then the directories no
// remaining link names. Links go before directories, so that a crash in
// between leaves no link to a missing directory in a kept chain. Names
// that are neither version links nor versioned directories are left
// alone.
func cleanup(base string, keep []string, step func(string)) ([]string, error) {
	cur, err := datastore.ReadChain(base)
	if err != nil {
		return nil, err
	}
	kept := map[string]bool{datastore.CurrentLink: true, cur.Major: true, cur.Minor: true, cur.Patch: true}
	for _, k := range keep {
		kept[k] = true
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, fmt.Errorf("list datastore base: %w", err)
	}
	var removed []string
	remove := func(name string) error {
		step("remove " + name)
		if err := os.RemoveAll(filepath.Join(base, name)); err != nil {
			return fmt.Errorf("remove %s: %w", name, err)
		}
		removed = append(removed, name)
		return nil
	}
	named := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		switch {
		case datastore.IsTemp(name) && e.Type()&os.ModeSymlink != 0:
			if err := remove(name); err != nil {
				return removed, err
			}
		case e.Type()&os.ModeSymlink != 0 && versionLinkRE.MatchString(name):
			if keep != nil && !kept[name] {
				if err := remove(name); err != nil {
					return removed, err
				}
				continue
			}
			if target, err := os.Readlink(filepath.Join(base, name)); err == nil {
				named[target] = true
			}
		}
	}
	for _, e := range entries {
		if name := e.Name(); e.IsDir() && versionDirRE.MatchString(name) && !named[name] {
			if err := remove(name); err != nil {
				return removed, err
			}
		}
	}
	if len(removed) > 0 {
		if err := datastore.SyncFS(base); err != nil {
			return removed, err
		}
	}
	return removed, nil
}
