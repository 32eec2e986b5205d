package generator

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/cli"
	"github.com/petrel-os/petrel/sources/multicall"
	"github.com/petrel-os/petrel/sources/settings"
)

// Main is the sundog agent:
//
//	sundog [--socket-path P] [--transaction T] [--commit T] [--timeout D]
//	sundog generate-seed     print a random update seed 0..2047 (a generator)
//
// Exit codes: 0 ok, 1 failure, 2 usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, command(stderr, nil), args, stdout, stderr)
}

// MainIn returns Main for a sundog linked into the multi-call binary of
// programs: a generator whose program is a link to this executable runs
// in this process (Config.Programs).
func MainIn(programs multicall.Programs) multicall.Program {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return cli.Run(ctx, command(stderr, programs), args, stdout, stderr)
	}
}

type options struct {
	socket, tx, commit, logLevel string
	timeout                      time.Duration
}

// command builds the sundog command tree; logs go to stderr.
func command(stderr io.Writer, programs multicall.Programs) *cobra.Command {
	var o options
	root := &cobra.Command{
		Use:   "sundog",
		Short: "Run the setting generators of unset settings and stage their values",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := cli.NewLogger(stderr, o.logLevel, "sundog")
			if err != nil {
				return err
			}
			c := apiclient.New(o.socket)
			defer c.Close()
			if _, err := settings.CommitFirst(cmd.Context(), c, o.commit, cmd.OutOrStdout(), log); err != nil {
				return err
			}
			cfg := Config{API: c, Transaction: o.tx, Timeout: o.timeout, Logger: log}
			if programs != nil {
				if self, err := os.Executable(); err != nil {
					log.Warn("find this program; generators will run as new processes", "error", err)
				} else {
					cfg.Programs, cfg.Self = programs, self
				}
			}
			res, err := Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "generated %d settings, %d skipped, %d already set\n", len(res.Generated), len(res.Skipped), len(res.Populated))
			return err
		},
	}
	f := root.Flags()
	f.StringVar(&o.socket, "socket-path", api.DefaultSocketPath, "API socket")
	f.StringVar(&o.tx, "transaction", api.LaunchTransaction, "transaction receiving generated settings")
	f.StringVar(&o.commit, "commit", "", settings.CommitUsage)
	f.DurationVar(&o.timeout, "timeout", DefaultTimeout, "time limit of each generator")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	root.AddCommand(&cobra.Command{
		Use:   "generate-seed",
		Short: "Print a random update seed 0..2047 (a setting generator)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var b [2]byte
			if _, err := rand.Read(b[:]); err != nil {
				return fmt.Errorf("generate seed: %w", err)
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), binary.BigEndian.Uint16(b[:])%2048)
			return err
		},
	})
	return root
}
