package settings

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
)

// DefaultDatastoreBase is where Petrel keeps its datastore.
const DefaultDatastoreBase = "/var/lib/petrel/datastore"

// DefaultDefaultsDir holds the variant's merged-at-boot defaults files.
const DefaultDefaultsDir = "/usr/share/petrel/defaults.d"

func newLogger(w io.Writer, level, component string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})).With("component", component), nil
}

// parse parses flags; it returns an exit code >= 0 when Main should stop.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) int {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2
	}
	return -1
}

// StorewolfMain is the storewolf agent: it loads the variant defaults into
// the datastore (see Storewolf). Exit codes: 0 ok, 1 failure, 2 usage.
func StorewolfMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("storewolf", flag.ContinueOnError)
	base := fs.String("data-store-base-path", DefaultDatastoreBase, "datastore base directory (holds the current link)")
	dir := fs.String("defaults-dir", DefaultDefaultsDir, "directory of defaults *.toml files, merged in name order")
	version := fs.String("version", "", "OS version X.Y.Z for a new datastore (default: VERSION_ID of --os-release)")
	osRelease := fs.String("os-release", "/usr/lib/os-release", "os-release file giving VERSION_ID")
	tx := fs.String("transaction", api.LaunchTransaction, "transaction receiving default settings")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if code := parse(fs, args, stderr); code >= 0 {
		return code
	}
	log, err := newLogger(stderr, *level, "storewolf")
	if err != nil {
		fmt.Fprintf(stderr, "storewolf: %v\n", err)
		return 2
	}
	if *version == "" {
		v, err := versionFromOSRelease(*osRelease)
		if err != nil {
			log.Error("no --version given", "error", err)
			return 1
		}
		*version = v
	}
	d, err := LoadDefaults(ctx, *dir)
	if err != nil {
		log.Error("load defaults", "error", err)
		return 1
	}
	res, err := Storewolf(ctx, StorewolfConfig{Base: *base, Version: *version, Transaction: *tx, Logger: log}, d)
	if err != nil {
		log.Error("storewolf failed", "error", err)
		return 1
	}
	fmt.Fprintf(stdout, "staged %d default settings in %s; wrote %d metadata and %d service values\n", res.Settings, *tx, res.Metadata, res.Other)
	return 0
}

// Commit commits transaction tx through the API. A 422 (nothing pending)
// is success, as upstream's settings-committer; it returns the committed
// keys (none in that case).
func Commit(ctx context.Context, c *apiclient.Client, tx string, log *slog.Logger) ([]string, error) {
	uri := api.PathTx + "?" + url.Values{api.QueryTx: {tx}}.Encode()
	if pending, err := c.Do(ctx, http.MethodGet, uri, nil); err == nil {
		log.Info("pending settings", "tx", tx, "settings", string(pending))
	} else {
		log.Warn("read pending settings", "tx", tx, "error", err)
	}
	keys, err := c.Commit(ctx, tx)
	var se *apiclient.StatusError
	if errors.As(err, &se) && se.Code == http.StatusUnprocessableEntity {
		log.Info("found no settings changes to commit", "tx", tx)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("commit transaction %q: %w", tx, err)
	}
	return keys, nil
}

// CommitterMain is settings-committer: it commits the launch transaction.
func CommitterMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("settings-committer", flag.ContinueOnError)
	tx := fs.String("transaction", api.LaunchTransaction, "transaction to commit")
	socket := fs.String("socket-path", api.DefaultSocketPath, "API socket")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if code := parse(fs, args, stderr); code >= 0 {
		return code
	}
	log, err := newLogger(stderr, *level, "settings-committer")
	if err != nil {
		fmt.Fprintf(stderr, "settings-committer: %v\n", err)
		return 2
	}
	c := apiclient.New(*socket)
	defer c.Close()
	keys, err := Commit(ctx, c, *tx, log)
	if err != nil {
		log.Error("settings-committer failed", "error", err)
		return 1
	}
	fmt.Fprintf(stdout, "committed %d settings from %s\n", len(keys), *tx)
	return 0
}
