package apiserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strconv"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/cli"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/hostexec"
	"github.com/petrel-os/petrel/sources/settings"
)

// Options are apiserver's command-line settings. DefaultOptions are the
// shipped ones, but for DatastorePath, which has no default.
type Options struct {
	DatastorePath string
	SocketPath    string
	// SocketGID owns the socket; negative: the group SocketGroup.
	SocketGID   int
	SocketGroup string
	OSRelease   string
	// Applier is the settings-applier program run on apply; "" only logs
	// (for development).
	Applier      string
	Systemctl    string
	LogLevel     string
	MaxBodyBytes int64
	// Updater is the updater agent run for the update actions;
	// UpdateStatus and UpdateLock are the status document and the lock
	// of the update state machine (UpdateConfig).
	Updater      string
	UpdateStatus string
	UpdateLock   string
	// ExecSocketPath is the host containerd's socket, where /exec runs
	// commands (upstream's --exec-socket-path); ExecFIFODir holds the
	// FIFOs of their standard streams.
	ExecSocketPath string
	ExecFIFODir    string
	// ContainerStatus is the directory of host-ctr's status documents,
	// served at api.PathContainerStatus.
	ContainerStatus string
}

// DefaultApplier is the settings applier of a Petrel host (sources/render).
const DefaultApplier = "/usr/bin/settings-applier"

// DefaultOptions returns the flag defaults.
func DefaultOptions() Options {
	return Options{
		SocketPath:   api.DefaultSocketPath,
		SocketGID:    -1,
		SocketGroup:  "api",
		OSRelease:    "/usr/lib/os-release",
		Applier:      DefaultApplier,
		Systemctl:    "/usr/bin/systemctl",
		LogLevel:     "info",
		MaxBodyBytes: api.MaxBodyBytes,
		Updater:      DefaultUpdater,
		UpdateStatus: "/run/petrel/update-status.json",
		UpdateLock:   "/run/lock/petrel-update-api.lock",

		ExecSocketPath:  hostexec.DefaultSocket,
		ExecFIFODir:     hostexec.DefaultFIFODir,
		ContainerStatus: api.DefaultContainerStatusDir,
	}
}

// DefaultUpdater is the updater agent of a Petrel host (sources/updater).
const DefaultUpdater = "/usr/bin/updater"

// Config returns the Config that Main serves store with for these
// options; it is the production wiring, and tests that mean to test what
// ships start from it: the settings model as Validator, the settings
// applier program (told the socket path) as Applier, systemctl as
// Rebooter, the socket's group and the os-release fields, the default
// Limits, the update routes running the updater agent (told the
// socket), and /exec in the host containerd. A missing
// group or os-release is logged, not fatal.
func (o Options) Config(store *datastore.Store, log *slog.Logger, stderr io.Writer) (Config, error) {
	gid := o.SocketGID
	if gid < 0 {
		g, err := user.LookupGroup(o.SocketGroup)
		if err != nil {
			log.Warn("socket group not found; only root may use the API", "group", o.SocketGroup, "error", err)
		} else if gid, err = strconv.Atoi(g.Gid); err != nil {
			return Config{}, fmt.Errorf("parse gid of group %q: %w", o.SocketGroup, err)
		}
	}
	osr, err := api.ReadOSRelease(o.OSRelease)
	if err != nil {
		log.Warn("os-release unreadable; /os will be empty", "path", o.OSRelease, "error", err)
	}
	var applier Applier = LogApplier{Logger: log}
	if o.Applier != "" {
		applier = CommandApplier{Path: o.Applier, SocketPath: o.SocketPath, Output: stderr}
	}
	return Config{
		Store:        store,
		Validator:    settings.Validator{},
		Applier:      applier,
		Rebooter:     SystemctlRebooter{Path: o.Systemctl},
		OS:           osr,
		Logger:       log,
		SocketGID:    gid,
		MaxBodyBytes: o.MaxBodyBytes,
		Limits:       DefaultLimits(),

		ContainerStatusDir: o.ContainerStatus,
		Updates: &UpdateConfig{
			Updater:    o.Updater,
			SocketPath: o.SocketPath,
			StatusPath: o.UpdateStatus,
			LockPath:   o.UpdateLock,
			Timeouts:   DefaultUpdateTimeouts(),
		},
		Exec: &hostexec.Config{Socket: o.ExecSocketPath, Namespace: hostexec.DefaultNamespace, FIFODir: o.ExecFIFODir},
	}, nil
}

// Main runs the API server until ctx is cancelled. It returns 0 on a clean
// shutdown, 1 on failure and 2 on a usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, command(stderr), args, stdout, stderr)
}

// command builds the apiserver command; logs go to stderr.
func command(stderr io.Writer) *cobra.Command {
	o := DefaultOptions()
	cmd := &cobra.Command{
		Use:   "apiserver --datastore-path DIR",
		Short: "Serve the settings API on a Unix socket",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.DatastorePath == "" {
				return cli.Usagef("--datastore-path is required")
			}
			log, err := cli.NewLogger(stderr, o.LogLevel, "apiserver")
			if err != nil {
				return err
			}
			return run(cmd.Context(), o, log, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DatastorePath, "datastore-path", "", "datastore directory, usually <base>/current (required)")
	f.StringVar(&o.SocketPath, "socket-path", o.SocketPath, "Unix socket to listen on")
	f.IntVar(&o.SocketGID, "socket-gid", o.SocketGID, "group owning the socket; its members may use the API (negative: group --socket-group)")
	f.StringVar(&o.SocketGroup, "socket-group", o.SocketGroup, "group name used when --socket-gid is not given")
	f.StringVar(&o.OSRelease, "os-release", o.OSRelease, "os-release file served at /os")
	f.StringVar(&o.Applier, "applier", o.Applier, "settings applier run on apply (thar-be-settings protocol); empty only logs")
	f.StringVar(&o.Systemctl, "systemctl", o.Systemctl, "systemctl used for /actions/reboot")
	f.StringVar(&o.LogLevel, "log-level", o.LogLevel, "debug, info, warn or error")
	f.Int64Var(&o.MaxBodyBytes, "max-body-bytes", o.MaxBodyBytes, "largest request body accepted")
	f.StringVar(&o.Updater, "updater", o.Updater, "updater agent run for the update actions")
	f.StringVar(&o.UpdateStatus, "update-status", o.UpdateStatus, "update status document (on tmpfs)")
	f.StringVar(&o.UpdateLock, "update-lock", o.UpdateLock, "lock held while an update command runs")
	f.StringVar(&o.ExecSocketPath, "exec-socket-path", o.ExecSocketPath, "host containerd socket, where /exec runs commands in host containers")
	f.StringVar(&o.ExecFIFODir, "exec-fifo-dir", o.ExecFIFODir, "directory of the FIFOs of /exec commands' standard streams")
	f.StringVar(&o.ContainerStatus, "container-status-dir", o.ContainerStatus, "host-ctr's container status documents")
	return cmd
}

func run(ctx context.Context, o Options, log *slog.Logger, stderr io.Writer) error {
	if _, err := os.Stat(o.DatastorePath); err != nil {
		return fmt.Errorf("datastore does not exist, did storewolf run? %w", err)
	}
	store, err := datastore.Open(ctx, o.DatastorePath)
	if err != nil {
		return err
	}
	defer store.Close()
	if r := store.Recovery(); r.Records > 0 || r.DiscardedBytes > 0 || len(r.RestoredTransactions) > 0 {
		log.Info("datastore recovered from its write-ahead log", "records", r.Records,
			"discarded_bytes", r.DiscardedBytes, "restored_transactions", r.RestoredTransactions)
	}
	if err := store.Recovery().CheckpointErr; err != nil {
		log.Warn("datastore checkpoint deferred: serving from the write-ahead log until there is space", "error", err)
	}
	cfg, err := o.Config(store, log, stderr)
	if err != nil {
		return err
	}
	srv := New(cfg)
	ln, err := Listen(o.SocketPath, cfg.SocketGID, 0o660)
	if err != nil {
		return err
	}
	if _, err := daemon.SdNotify(true, daemon.SdNotifyReady); err != nil {
		log.Warn("notify systemd", "error", err)
	}
	log.Info("listening", "socket", o.SocketPath, "datastore", store.Dir(), "gid", cfg.SocketGID, "applier", o.Applier)
	err = srv.Serve(ctx, ln)
	log.Info("stopped")
	return err
}
