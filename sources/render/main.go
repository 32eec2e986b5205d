package render

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
)

// Main is the settings-applier agent (upstream's thar-be-settings):
//
//	settings-applier --all              render every file (non-strict), restart every service
//	settings-applier [--daemon] < keys  render and restart for a JSON list of changed keys
//	settings-applier set-hostname FILE  set the kernel host name from FILE
//
// --daemon is accepted for apiserver's CommandApplier; the work is done
// before exiting (no fork). Exit codes: 0 ok, 1 failure, 2 usage. The
// changed keys are read from the process's standard input; see Run.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Run(ctx, args, os.Stdin, stdout, stderr)
}

// Run is Main with an explicit standard input.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "set-hostname" {
		if len(args) != 2 {
			fmt.Fprintln(stderr, "usage: settings-applier set-hostname FILE")
			return 2
		}
		if err := SetHostname(args[1]); err != nil {
			fmt.Fprintf(stderr, "settings-applier: %v\n", err)
			return 1
		}
		return 0
	}
	fs := flag.NewFlagSet("settings-applier", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := fs.Bool("all", false, "render every configuration file and restart every service")
	fs.Bool("daemon", false, "accepted for compatibility; the work is done before exiting")
	socket := fs.String("socket-path", api.DefaultSocketPath, "API socket")
	root := fs.String("root", "/", "root directory for configuration files and templates")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "settings-applier: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "settings-applier: bad --log-level %q\n", *level)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})).With("component", "settings-applier")

	var keys []string
	if !*all {
		dec := json.NewDecoder(io.LimitReader(stdin, 1<<20))
		if err := dec.Decode(&keys); err != nil {
			log.Error("read changed keys from stdin: expected a JSON list of strings", "error", err)
			return 2
		}
		if keys == nil {
			keys = []string{}
		}
	}
	client := apiclient.New(*socket)
	defer client.Close()
	restarter := SystemRestarter{}
	if units, err := ConnectSystemd(ctx); err != nil {
		log.Warn("systemd D-Bus unavailable; systemctl commands will be run as programs", "error", err)
	} else {
		defer units.Close()
		restarter.Units = units
	}
	a := &Applier{Source: APISource{Client: client}, Restarter: restarter, Root: *root, Logger: log}
	var res Result
	var err error
	if *all {
		res, err = a.All(ctx)
	} else {
		res, err = a.Keys(ctx, keys)
	}
	fmt.Fprintf(stdout, "wrote %d configuration files, restarted %d services, %d files failed\n", len(res.Written), len(res.Restarted), len(res.Failed))
	if err != nil {
		log.Error("apply settings", "error", err)
		return 1
	}
	if len(res.Failed) > 0 {
		log.Warn("some configuration files failed to render", "files", res.Failed)
	}
	return 0
}
