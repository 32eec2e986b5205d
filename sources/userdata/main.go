package userdata

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/cli"
	"github.com/petrel-os/petrel/sources/guestinfo"
)

// Default paths.
const (
	DefaultUserDataFile = "/var/lib/petrel/user-data.toml"
	DefaultMarker       = "/var/lib/petrel/early-boot-config.ran"
	// DefaultProviders are all providers in the fixed order; each costs
	// nothing where it does not apply (imds looks at DMI before it sends a
	// request, vmware checks the CPUID hypervisor signature).
	DefaultProviders = "file,config-drive,imds,vmware"
)

// Main is the early-boot-config agent. --providers names the providers in
// order (file, config-drive, imds, vmware; by default all of them: imds has
// no user data off EC2 and vmware none off VMware). Exit codes: 0 ok, 1 failure, 2
// usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, command(stderr), args, stdout, stderr)
}

type options struct {
	providers, file, marker, imdsURL, socket, tx, logLevel string
}

// command builds the early-boot-config command; logs go to stderr.
func command(stderr io.Writer) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "early-boot-config",
		Short: "Stage user data settings from the first provider that has them, once per instance",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ps, err := providers(o)
			if err != nil {
				return err
			}
			log, err := cli.NewLogger(stderr, o.logLevel, "early-boot-config")
			if err != nil {
				return err
			}
			client := apiclient.New(o.socket)
			defer client.Close()
			res, err := Run(cmd.Context(), Config{Providers: ps, API: client, Transaction: o.tx, Marker: o.marker, Logger: log})
			if err != nil {
				return err
			}
			if res.AlreadyRan {
				_, err = fmt.Fprintln(cmd.OutOrStdout(), "user data already applied on this instance")
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "applied user data from %d providers\n", len(res.Applied))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.providers, "providers", DefaultProviders, "comma-separated providers, in order: file, config-drive, imds, vmware")
	f.StringVar(&o.file, "user-data-file", DefaultUserDataFile, "local user data file")
	f.StringVar(&o.marker, "marker", DefaultMarker, "file created once user data was applied")
	f.StringVar(&o.imdsURL, "imds-url", DefaultIMDSURL, "EC2 instance metadata base URL")
	f.StringVar(&o.socket, "socket-path", api.DefaultSocketPath, "API socket")
	f.StringVar(&o.tx, "transaction", api.LaunchTransaction, "transaction receiving user data")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// providers turns --providers into providers; an unknown name is a usage
// error.
func providers(o options) ([]Provider, error) {
	var ps []Provider
	for _, name := range strings.Split(o.providers, ",") {
		switch strings.TrimSpace(name) {
		case "file":
			ps = append(ps, FileProvider{Path: o.file})
		case "config-drive":
			ps = append(ps, ConfigDriveProvider{})
		case "imds":
			ps = append(ps, &IMDSProvider{BaseURL: o.imdsURL, OnEC2: func() bool { return OnEC2("/sys") }})
		case "vmware":
			ps = append(ps, VMwareProvider{Info: guestinfo.Reader{}})
		case "":
		default:
			return nil, cli.Usagef("unknown provider %q in --providers (expected file, config-drive, imds or vmware)", name)
		}
	}
	return ps, nil
}
