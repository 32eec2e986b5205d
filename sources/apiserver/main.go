package apiserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/cli"
	"github.com/petrel-os/petrel/sources/datastore"
)

type options struct {
	datastorePath string
	socketPath    string
	socketGID     int
	socketGroup   string
	osRelease     string
	applier       string
	systemctl     string
	logLevel      string
	maxBody       int64
}

// Main runs the API server until ctx is cancelled. It returns 0 on a clean
// shutdown, 1 on failure and 2 on a usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, command(stderr), args, stdout, stderr)
}

// command builds the apiserver command; logs go to stderr.
func command(stderr io.Writer) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "apiserver --datastore-path DIR",
		Short: "Serve the settings API on a Unix socket",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.datastorePath == "" {
				return cli.Usagef("--datastore-path is required")
			}
			log, err := cli.NewLogger(stderr, o.logLevel, "apiserver")
			if err != nil {
				return err
			}
			return run(cmd.Context(), o, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.datastorePath, "datastore-path", "", "datastore directory, usually <base>/current (required)")
	f.StringVar(&o.socketPath, "socket-path", api.DefaultSocketPath, "Unix socket to listen on")
	f.IntVar(&o.socketGID, "socket-gid", -1, "group owning the socket; its members may use the API (negative: group --socket-group)")
	f.StringVar(&o.socketGroup, "socket-group", "api", "group name used when --socket-gid is not given")
	f.StringVar(&o.osRelease, "os-release", "/usr/lib/os-release", "os-release file served at /os")
	f.StringVar(&o.applier, "applier", "", "program run on apply (thar-be-settings protocol); empty only logs")
	f.StringVar(&o.systemctl, "systemctl", "/usr/bin/systemctl", "systemctl used for /actions/reboot")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.Int64Var(&o.maxBody, "max-body-bytes", api.MaxBodyBytes, "largest request body accepted")
	return cmd
}

func run(ctx context.Context, o options, log *slog.Logger) error {
	if _, err := os.Stat(o.datastorePath); err != nil {
		return fmt.Errorf("datastore does not exist, did storewolf run? %w", err)
	}
	store, err := datastore.Open(ctx, o.datastorePath)
	if err != nil {
		return err
	}
	defer store.Close()
	if r := store.Recovery(); r.Records > 0 || r.DiscardedBytes > 0 || len(r.RestoredTransactions) > 0 {
		log.Info("datastore recovered from its write-ahead log", "records", r.Records,
			"discarded_bytes", r.DiscardedBytes, "restored_transactions", r.RestoredTransactions)
	}
	gid := o.socketGID
	if gid < 0 {
		g, err := user.LookupGroup(o.socketGroup)
		if err != nil {
			log.Warn("socket group not found; only root may use the API", "group", o.socketGroup, "error", err)
		} else if gid, err = strconv.Atoi(g.Gid); err != nil {
			return fmt.Errorf("parse gid of group %q: %w", o.socketGroup, err)
		}
	}
	osr, err := readOSRelease(o.osRelease)
	if err != nil {
		log.Warn("os-release unreadable; /os will be empty", "path", o.osRelease, "error", err)
	}
	var applier Applier = LogApplier{Logger: log}
	if o.applier != "" {
		applier = CommandApplier{Path: o.applier}
	}
	srv := New(Config{
		Store: store, Applier: applier, Rebooter: SystemctlRebooter{Path: o.systemctl},
		OS: osr, Logger: log, SocketGID: gid, MaxBodyBytes: o.maxBody,
	})
	ln, err := Listen(o.socketPath, gid, 0o660)
	if err != nil {
		return err
	}
	if _, err := daemon.SdNotify(true, daemon.SdNotifyReady); err != nil {
		log.Warn("notify systemd", "error", err)
	}
	log.Info("listening", "socket", o.socketPath, "datastore", store.Dir(), "gid", gid)
	err = srv.Serve(ctx, ln)
	log.Info("stopped")
	return err
}

// readOSRelease reads the fields served at /os from an os-release file.
func readOSRelease(path string) (api.OSRelease, error) {
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	if arch == "" {
		arch = runtime.GOARCH
	}
	o := api.OSRelease{Arch: arch}
	f, err := os.Open(path)
	if err != nil {
		return o, fmt.Errorf("open os-release: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `'"`)
		}
		switch k {
		case "PRETTY_NAME":
			o.PrettyName = v
		case "VARIANT_ID":
			o.VariantID = v
		case "VERSION_ID":
			o.VersionID = v
		case "BUILD_ID":
			o.BuildID = v
		}
	}
	if err := sc.Err(); err != nil {
		return o, fmt.Errorf("read os-release %q: %w", path, err)
	}
	return o, nil
}
