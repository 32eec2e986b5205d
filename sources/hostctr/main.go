package hostctr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/cli"
	"github.com/petrel-os/petrel/sources/render"
	"github.com/petrel-os/petrel/sources/settings"
)

// Main is the host-ctr agent. Exit codes: 0 ok, 1 failure, 2 usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, command(stdout, stderr), args, stdout, stderr)
}

type options struct {
	socket, namespace, apiSocket, logLevel string
	paths                                  Paths
	// systemdRun exists when the host was booted with systemd.
	systemdRun string
}

func command(stdout, stderr io.Writer) *cobra.Command {
	if os.Getenv("JOURNAL_STREAM") != "" {
		stderr = noticeWriter{stderr}
	}
	o := options{socket: DefaultSocket, namespace: DefaultNamespace, apiSocket: api.DefaultSocketPath, logLevel: "info", paths: DefaultPaths(),
		systemdRun: "/run/systemd/system"}
	root := &cobra.Command{
		Use:   "host-ctr",
		Short: "Run host containers and bootstrap containers in the host containerd",
	}
	pf := root.PersistentFlags()
	pf.StringVar(&o.socket, "containerd-socket", o.socket, "the host containerd's socket")
	pf.StringVar(&o.namespace, "namespace", o.namespace, "containerd namespace")
	pf.StringVar(&o.apiSocket, "api-socket", o.apiSocket, "API socket (settings are read from it)")
	pf.StringVar(&o.paths.StatusDir, "status-dir", o.paths.StatusDir, "directory of the containers' status documents")
	pf.StringVar(&o.paths.Local, "local", o.paths.Local, "root of the containers' persistent storage")
	pf.StringVar(&o.logLevel, "log-level", o.logLevel, "debug, info, warn or error")

	// withRunner runs f with a logger, an API client and a containerd client.
	withRunner := func(f func(ctx context.Context, r *Runner, c *apiclient.Client) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			log, err := cli.NewLogger(stderr, o.logLevel, "host-ctr")
			if err != nil {
				return err
			}
			c := apiclient.New(o.apiSocket)
			defer c.Close()
			r, err := NewRunner(cmd.Context(), o.socket, o.namespace, o.paths, stdout, log)
			if err != nil {
				return err
			}
			defer r.Close()
			return f(cmd.Context(), r, c)
		}
	}

	var id string
	run := &cobra.Command{
		Use:   "run --container-id NAME",
		Short: "Run host container NAME (settings.host-containers.NAME) until stopped or its task exits",
		Args:  cobra.NoArgs,
		RunE: withRunner(func(ctx context.Context, r *Runner, c *apiclient.Client) error {
			if id == "" {
				return cli.Usagef("--container-id is required")
			}
			return r.RunHost(ctx, c, id)
		}),
	}
	run.Flags().StringVar(&id, "container-id", "", "host container name (required)")

	bootstrap := &cobra.Command{
		Use:   "bootstrap",
		Short: "Run the bootstrap containers to completion, in name order; fails if an essential one fails",
		Args:  cobra.NoArgs,
		RunE: withRunner(func(ctx context.Context, r *Runner, c *apiclient.Client) error {
			return r.RunBootstrap(ctx, c, func(ctx context.Context) error { return startContainerd(ctx, o) })
		}),
	}

	var cleanID string
	cleanUp := &cobra.Command{
		Use:   "clean-up --container-id ID",
		Short: "Remove container ID, its task and its snapshot",
		Args:  cobra.NoArgs,
		RunE: withRunner(func(ctx context.Context, r *Runner, _ *apiclient.Client) error {
			if cleanID == "" {
				return cli.Usagef("--container-id is required")
			}
			return r.CleanUp(ctx, cleanID)
		}),
	}
	cleanUp.Flags().StringVar(&cleanID, "container-id", "", "containerd container ID (required)")

	configure := &cobra.Command{
		Use:   "configure",
		Short: "Start enabled host containers and stop disabled ones (restart command; reads CHANGED_SETTINGS)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := cli.NewLogger(stderr, o.logLevel, "host-ctr")
			if err != nil {
				return err
			}
			return configureFromAPI(cmd.Context(), o, settings.Changed(cmd.Context()), log)
		},
	}
	root.AddCommand(run, bootstrap, cleanUp, configure)
	return root
}

// containerdUnit is the host containerd's unit (packages/host).
const containerdUnit = "host-containerd.service"

// startContainerd starts the host containerd and waits until it is ready;
// without systemd (a test's root) it does nothing.
func startContainerd(ctx context.Context, o options) error {
	if _, err := os.Stat(o.systemdRun); err != nil {
		return nil
	}
	units, err := render.ConnectSystemd(ctx)
	if err != nil {
		return fmt.Errorf("start the host containerd: %w", err)
	}
	defer units.Close()
	if err := units.StartUnitAndWait(ctx, containerdUnit); err != nil {
		return fmt.Errorf("start the host containerd: %w", err)
	}
	return nil
}

// configureFromAPI runs Configure with the settings from the API and
// systemd over D-Bus.
func configureFromAPI(ctx context.Context, o options, changed []string, log *slog.Logger) error {
	c := apiclient.New(o.apiSocket)
	defer c.Close()
	s, err := readSettings(ctx, c)
	if err != nil {
		return err
	}
	if _, err := os.Stat(o.systemdRun); err != nil {
		// sd_booted(3): not a systemd boot (a test's root), nothing to start.
		log.Warn("not booted with systemd; host containers are not started", "missing", o.systemdRun)
		return nil
	}
	units, err := render.ConnectSystemd(ctx)
	if err != nil {
		return fmt.Errorf("configure host containers: %w", err)
	}
	defer units.Close()
	if err := Configure(ctx, s, changed, units, o.paths.StatusDir, log); err != nil {
		return errors.Join(errors.New("configure host containers"), err)
	}
	return nil
}

// noticeWriter prefixes each log record with the syslog priority notice
// ("<5>"), which journald reads from a stream (SyslogLevelPrefix=): the
// units run at SyslogLevel=info, so the containers' own output stays in
// the journal while host-ctr's lines also reach the console.
type noticeWriter struct{ w io.Writer }

func (n noticeWriter) Write(p []byte) (int, error) {
	if _, err := n.w.Write(append([]byte("<5>"), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}
