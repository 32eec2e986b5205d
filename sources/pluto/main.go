package pluto

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/cli"
	"github.com/petrel-os/petrel/sources/userdata"
)

// Main is the pluto agent:
//
//	pluto [--socket-path P] [--transaction T] [--imds-url URL]
//
// It prints one line per generated setting with its source. Exit codes:
// 0 ok (also off EC2, where it generates nothing), 1 failure (IMDS
// unreachable, an answer the settings model refuses), 2 usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, command(), args, stdout, stderr)
}

func command() *cobra.Command {
	var socket, tx, imdsURL string
	cmd := &cobra.Command{
		Use:   "pluto",
		Short: "Generate the unset Kubernetes settings of an EC2 instance from its metadata and stage them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := apiclient.New(socket)
			defer c.Close()
			res, err := Run(cmd.Context(), Config{API: c, Transaction: tx,
				IMDS:  &userdata.IMDSProvider{BaseURL: imdsURL},
				OnEC2: func() bool { return userdata.OnEC2("/sys") }})
			if err != nil {
				return err
			}
			return report(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&socket, "socket-path", api.DefaultSocketPath, "API socket")
	f.StringVar(&tx, "transaction", api.LaunchTransaction, "transaction receiving generated settings")
	f.StringVar(&imdsURL, "imds-url", userdata.DefaultIMDSURL, "EC2 instance metadata base URL")
	return cmd
}

// report prints what Run did, for the console.
func report(w io.Writer, res Result) error {
	if res.NotEC2 {
		_, err := fmt.Fprintln(w, "not an EC2 instance (no Amazon EC2 DMI vendor, no ec2 hypervisor UUID): no Kubernetes settings generated")
		return err
	}
	for _, s := range res.Generated {
		if _, err := fmt.Fprintf(w, "settings.kubernetes.%s = %v (%s)\n", s.Key, s.Value, s.From); err != nil {
			return err
		}
	}
	for _, s := range res.Skipped {
		if _, err := fmt.Fprintf(w, "settings.kubernetes.%s left unset: %s\n", s.Key, s.From); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "generated %d Kubernetes settings, %d already set\n", len(res.Generated), len(res.Kept))
	return err
}
