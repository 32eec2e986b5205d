package apiserver

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/petrel-os/petrel/sources/api"
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

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("apiserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.datastorePath, "datastore-path", "", "datastore directory, usually <base>/current (required)")
	fs.StringVar(&o.socketPath, "socket-path", api.DefaultSocketPath, "Unix socket to listen on")
	fs.IntVar(&o.socketGID, "socket-gid", -1, "group owning the socket; its members may use the API (default: group --socket-group)")
	fs.StringVar(&o.socketGroup, "socket-group", "api", "group name used when --socket-gid is not given")
	fs.StringVar(&o.osRelease, "os-release", "/usr/lib/os-release", "os-release file served at /os")
	fs.StringVar(&o.applier, "applier", "", "program run on apply (thar-be-settings protocol); empty only logs")
	fs.StringVar(&o.systemctl, "systemctl", "/usr/bin/systemctl", "systemctl used for /actions/reboot")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.Int64Var(&o.maxBody, "max-body-bytes", api.MaxBodyBytes, "largest request body accepted")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.datastorePath == "" {
		return o, errors.New("--datastore-path is required")
	}
	return o, nil
}

// Main runs the API server until ctx is cancelled. It returns 0 on a clean
// shutdown, 1 on failure and 2 on a usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "apiserver: %v\n", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "apiserver: bad --log-level %q\n", o.logLevel)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("component", "apiserver")
	if err := run(ctx, o, log); err != nil {
		log.Error("apiserver failed", "error", err)
		return 1
	}
	return 0
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
