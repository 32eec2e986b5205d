package userdata

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
)

// Default paths.
const (
	DefaultUserDataFile = "/var/lib/petrel/user-data.toml"
	DefaultMarker       = "/var/lib/petrel/early-boot-config.ran"
)

// Main is the early-boot-config agent. --providers names the providers in
// order (file, config-drive, imds, vmware; vmware needs a guestinfo
// reader and is not available from the command line yet). Exit codes: 0
// ok, 1 failure, 2 usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("early-boot-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	providers := fs.String("providers", "file,config-drive", "comma-separated providers, in order: file, config-drive, imds")
	file := fs.String("user-data-file", DefaultUserDataFile, "local user data file")
	marker := fs.String("marker", DefaultMarker, "file created once user data was applied")
	imdsURL := fs.String("imds-url", DefaultIMDSURL, "EC2 instance metadata base URL")
	socket := fs.String("socket-path", api.DefaultSocketPath, "API socket")
	tx := fs.String("transaction", api.LaunchTransaction, "transaction receiving user data")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "early-boot-config: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "early-boot-config: bad --log-level %q\n", *level)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})).With("component", "early-boot-config")
	var ps []Provider
	for _, name := range strings.Split(*providers, ",") {
		switch strings.TrimSpace(name) {
		case "file":
			ps = append(ps, FileProvider{Path: *file})
		case "config-drive":
			ps = append(ps, ConfigDriveProvider{})
		case "imds":
			ps = append(ps, &IMDSProvider{BaseURL: *imdsURL})
		case "":
		default:
			fmt.Fprintf(stderr, "early-boot-config: unknown provider %q (expected file, config-drive or imds)\n", name)
			return 2
		}
	}
	client := apiclient.New(*socket)
	defer client.Close()
	res, err := Run(ctx, Config{Providers: ps, API: client, Transaction: *tx, Marker: *marker, Logger: log})
	if err != nil {
		log.Error("early-boot-config failed", "error", err)
		return 1
	}
	if res.AlreadyRan {
		fmt.Fprintln(stdout, "user data already applied on this instance")
		return 0
	}
	fmt.Fprintf(stdout, "applied user data from %d providers\n", len(res.Applied))
	return 0
}
