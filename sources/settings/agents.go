package settings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/cli"
)

// DefaultDatastoreBase is where Petrel keeps its datastore.
const DefaultDatastoreBase = "/var/lib/petrel/datastore"

// DefaultDefaultsDir holds the variant's merged-at-boot defaults files.
const DefaultDefaultsDir = "/usr/share/petrel/defaults.d"

// StorewolfMain is the storewolf agent: it loads the variant defaults into
// the datastore (see Storewolf). Exit codes: 0 ok, 1 failure, 2 usage.
func StorewolfMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, storewolfCommand(stderr), args, stdout, stderr)
}

type storewolfOptions struct {
	base, dir, version, osRelease, tx, logLevel string
}

// storewolfCommand builds the storewolf command; logs go to stderr.
func storewolfCommand(stderr io.Writer) *cobra.Command {
	var o storewolfOptions
	cmd := &cobra.Command{
		Use:   "storewolf",
		Short: "Create the datastore if needed and stage the variant's default settings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := cli.NewLogger(stderr, o.logLevel, "storewolf")
			if err != nil {
				return err
			}
			return runStorewolf(cmd.Context(), o, cmd.OutOrStdout(), log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.base, "data-store-base-path", DefaultDatastoreBase, "datastore base directory (holds the current link)")
	f.StringVar(&o.dir, "defaults-dir", DefaultDefaultsDir, "directory of defaults *.toml files, merged in name order")
	f.StringVar(&o.version, "version", "", "OS version X.Y.Z for a new datastore (default: VERSION_ID of --os-release)")
	f.StringVar(&o.osRelease, "os-release", "/usr/lib/os-release", "os-release file giving VERSION_ID")
	f.StringVar(&o.tx, "transaction", api.LaunchTransaction, "transaction receiving default settings")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

func runStorewolf(ctx context.Context, o storewolfOptions, stdout io.Writer, log *slog.Logger) error {
	if o.version == "" {
		v, err := versionFromOSRelease(o.osRelease)
		if err != nil {
			return fmt.Errorf("no --version given: %w", err)
		}
		o.version = v
	}
	d, err := LoadDefaults(ctx, o.dir)
	if err != nil {
		return fmt.Errorf("load defaults: %w", err)
	}
	res, err := Storewolf(ctx, StorewolfConfig{Base: o.base, Version: o.version, Transaction: o.tx, Logger: log}, d)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "staged %d default settings in %s; wrote %d metadata and %d service values\n", res.Settings, o.tx, res.Metadata, res.Other)
	return err
}

// Commit commits transaction tx through the API. A 422 (nothing pending)
// is success, as upstream's settings-committer; it returns the committed
// keys (none in that case).
func Commit(ctx context.Context, c *apiclient.Client, tx string, log *slog.Logger) ([]string, error) {
	uri := api.PathTx + "?" + url.Values{api.QueryTx: {tx}}.Encode()
	if pending, err := c.Do(ctx, http.MethodGet, uri, nil); err == nil {
		// The keys only: values may be secrets (registry passwords,
		// user data), and this line reaches the console.
		log.Info("pending settings", "tx", tx, "keys", pendingKeys(pending))
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

// CommitFirst is the --commit flag of sundog and settings-applier: with
// a transaction named, it commits it as settings-committer would, in the
// agent's own process and before the agent's work, prints what
// settings-committer prints and returns the committed keys. Upstream runs
// settings-committer as the units' ExecStartPre=, which costs a start of
// the agents' binary (about 0.15 s under software emulation) on the
// boot's critical path; Petrel's units pass --commit instead.
func CommitFirst(ctx context.Context, c *apiclient.Client, tx string, out io.Writer, log *slog.Logger) ([]string, error) {
	if tx == "" {
		return nil, nil
	}
	keys, err := Commit(ctx, c, tx, log)
	if err != nil {
		return nil, err
	}
	_, err = fmt.Fprintf(out, "committed %d settings from %s\n", len(keys), tx)
	return keys, err
}

// CommitUsage is the help text of the --commit flag of CommitFirst's
// callers.
const CommitUsage = "first commit this transaction, as settings-committer does"

// CommitterMain is settings-committer: it commits the launch transaction.
// Exit codes: 0 ok, 1 failure, 2 usage.
func CommitterMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, committerCommand(stderr), args, stdout, stderr)
}

// committerCommand builds the settings-committer command; logs go to
// stderr.
func committerCommand(stderr io.Writer) *cobra.Command {
	var tx, socket, level string
	cmd := &cobra.Command{
		Use:   "settings-committer",
		Short: "Commit a transaction of pending settings through the API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := cli.NewLogger(stderr, level, "settings-committer")
			if err != nil {
				return err
			}
			c := apiclient.New(socket)
			defer c.Close()
			_, err = CommitFirst(cmd.Context(), c, tx, cmd.OutOrStdout(), log)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&tx, "transaction", api.LaunchTransaction, "transaction to commit")
	f.StringVar(&socket, "socket-path", api.DefaultSocketPath, "API socket")
	f.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// pendingKeys lists the keys of a pending settings object (GET /tx),
// without their values; a body that is not one is described, not shown.
func pendingKeys(body []byte) string {
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Sprintf("(%d bytes that are not a JSON object)", len(body))
	}
	kvs, err := Flatten([]string{"settings"}, doc)
	if err != nil {
		return "(keys that are not settings)"
	}
	keys := make([]string, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.Key.Name()
	}
	return strings.Join(keys, " ")
}
