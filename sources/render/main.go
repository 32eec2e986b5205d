package render

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/cli"
	"github.com/petrel-os/petrel/sources/multicall"
	"github.com/petrel-os/petrel/sources/settings"
)

// Main is the settings-applier agent (upstream's thar-be-settings):
//
//	settings-applier --all              render every file (non-strict), restart every service
//	settings-applier [--daemon] < keys  render and restart for a JSON list of changed keys
//	settings-applier set-hostname FILE  set the kernel host name from FILE
//	settings-applier set-lockdown       raise the kernel lockdown level to settings.kernel.lockdown
//	settings-applier set-sysctl         write settings.kernel.sysctl to /proc/sys
//	settings-applier load-modules       load the modules settings.kernel.modules autoloads
//	settings-applier write-static-pods  write kubelet's static pods from settings.kubernetes.static-pods
//	settings-applier write-resolv-conf  write /etc/resolv.conf from settings.dns, or else DHCP
//
// With --commit T, the first two forms first commit transaction T through
// the API (as settings-committer does) and include its keys.
//
// --daemon is accepted for apiserver's CommandApplier; the work is done
// before exiting (no fork). Exit codes: 0 ok, 1 failure, 2 usage. The
// changed keys are read from the process's standard input; see Run.
//
// Main runs every restart command as a new process; MainIn runs those of
// the multi-call binary's agents in its own.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Run(ctx, args, os.Stdin, stdout, stderr)
}

// MainIn returns Main for a settings-applier linked into the multi-call
// binary of programs: a restart command that runs one of them through a
// link to this executable runs in this process (SystemRestarter).
func MainIn(programs multicall.Programs) multicall.Program {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return cli.Run(ctx, command(os.Stdin, stderr, programs), args, stdout, stderr)
	}
}

// Run is Main with an explicit standard input.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return cli.Run(ctx, command(stdin, stderr, nil), args, stdout, stderr)
}

type options struct {
	all, daemon                    bool
	socket, root, commit, logLevel string
}

// command builds the settings-applier command tree; the changed keys are
// read from stdin, logs go to stderr; restart commands of programs run in
// process.
func command(stdin io.Reader, stderr io.Writer, programs multicall.Programs) *cobra.Command {
	var o options
	root := &cobra.Command{
		Use:   "settings-applier [--all]",
		Short: "Render configuration files and restart services for changed settings (JSON list of keys on stdin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := cli.NewLogger(stderr, o.logLevel, "settings-applier")
			if err != nil {
				return err
			}
			return apply(cmd.Context(), o, programs, stdin, cmd.OutOrStdout(), log)
		},
	}
	f := root.Flags()
	f.BoolVar(&o.all, "all", false, "render every configuration file and restart every service")
	f.StringVar(&o.commit, "commit", "", settings.CommitUsage)
	f.BoolVar(&o.daemon, "daemon", false, "accepted for compatibility; the work is done before exiting")
	f.StringVar(&o.socket, "socket-path", api.DefaultSocketPath, "API socket")
	f.StringVar(&o.root, "root", "/", "root directory for configuration files and templates")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	root.AddCommand(&cobra.Command{
		Use:   "set-hostname FILE",
		Short: "Set the kernel host name from FILE",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return SetHostname(args[0], cmd.OutOrStdout())
		},
	})
	var lockdownFile string
	lockdown := apiCommand(&o, stderr, "set-lockdown", "Raise the kernel lockdown level to "+LockdownKey+" (lowering takes a reboot)",
		func(ctx context.Context, client *apiclient.Client, out io.Writer, log *slog.Logger) error {
			return lockdownFromAPI(ctx, client, lockdownFile, out, log)
		})
	lockdown.Flags().StringVar(&lockdownFile, "file", DefaultLockdownFile, "the kernel's lockdown control")
	root.AddCommand(lockdown)
	var proc string
	sysctl := apiCommand(&o, stderr, "set-sysctl", "Write "+SysctlKey+" to /proc/sys (a key the kernel lacks or refuses is a warning)",
		func(ctx context.Context, client *apiclient.Client, out io.Writer, log *slog.Logger) error {
			return sysctlFromAPI(ctx, client, proc, out, log)
		})
	sysctl.Flags().StringVar(&proc, "proc", DefaultProc, "procfs's mount point")
	root.AddCommand(sysctl)
	var loader Loader
	modules := apiCommand(&o, stderr, "load-modules", "Load the kernel modules "+ModulesKey+" autoloads and allows (a module that fails is a warning)",
		func(ctx context.Context, client *apiclient.Client, out io.Writer, log *slog.Logger) error {
			return loader.modulesFromAPI(ctx, client, out, log)
		})
	modules.Flags().StringVar(&loader.Modprobe, "modprobe", DefaultModprobe, "the modprobe program")
	modules.Flags().StringVar(&loader.Sys, "sys", DefaultSys, "sysfs's mount point")
	root.AddCommand(modules)
	var podDir string
	staticPods := apiCommand(&o, stderr, "write-static-pods", "Write kubelet's static pod manifests from "+StaticPodsKey,
		func(ctx context.Context, client *apiclient.Client, out io.Writer, log *slog.Logger) error {
			return staticPodsFromAPI(ctx, client, podDir, out, log)
		})
	staticPods.Flags().StringVar(&podDir, "dir", DefaultStaticPodDir, "kubelet's static pod directory")
	root.AddCommand(staticPods)
	var resolvFile, linksDir string
	var resolvWait time.Duration
	resolv := apiCommand(&o, stderr, "write-resolv-conf", "Write the host's resolver configuration from "+DNSKey+", or else from DHCP",
		func(ctx context.Context, client *apiclient.Client, out io.Writer, log *slog.Logger) error {
			return resolvConfFromAPI(ctx, client, resolvFile, linksDir, resolvWait, out, log)
		})
	resolv.Flags().StringVar(&resolvFile, "file", DefaultResolvConf, "the resolver configuration to write")
	resolv.Flags().StringVar(&linksDir, "links-dir", DefaultNetworkLinks, "systemd-networkd's link state files (DHCP's name servers)")
	resolv.Flags().DurationVar(&resolvWait, "wait", 0, "with no name server yet, wait up to this long for DHCP's")
	root.AddCommand(resolv)
	return root
}

// apiCommand is a subcommand that reads settings through the API: run
// gets a client of --socket-path and a logger at --log-level.
func apiCommand(o *options, stderr io.Writer, use, short string,
	run func(ctx context.Context, client *apiclient.Client, out io.Writer, log *slog.Logger) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := cli.NewLogger(stderr, o.logLevel, "settings-applier")
			if err != nil {
				return err
			}
			client := apiclient.New(o.socket)
			defer client.Close()
			return run(cmd.Context(), client, cmd.OutOrStdout(), log)
		},
	}
	cmd.Flags().StringVar(&o.socket, "socket-path", api.DefaultSocketPath, "API socket")
	cmd.Flags().StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// apply renders and restarts for the keys on stdin, or for all with --all.
func apply(ctx context.Context, o options, programs multicall.Programs, stdin io.Reader, stdout io.Writer, log *slog.Logger) error {
	var keys []string
	if !o.all {
		dec := json.NewDecoder(io.LimitReader(stdin, 1<<20))
		if err := dec.Decode(&keys); err != nil {
			return cli.Usagef("read changed keys from stdin: expected a JSON list of strings: %w", err)
		}
		if keys == nil {
			keys = []string{}
		}
	}
	client := apiclient.New(o.socket)
	defer client.Close()
	committed, err := settings.CommitFirst(ctx, client, o.commit, stdout, log)
	if err != nil {
		return err
	}
	if !o.all {
		keys = append(keys, committed...)
	}
	restarter := SystemRestarter{Output: stdout}
	if programs != nil {
		if self, err := os.Executable(); err != nil {
			log.Warn("find this program; restart commands will run as new processes", "error", err)
		} else {
			restarter.Programs, restarter.Self = programs, self
		}
	}
	if units, err := ConnectSystemd(ctx); err != nil {
		log.Warn("systemd D-Bus unavailable; systemctl commands will be run as programs", "error", err)
	} else {
		defer units.Close()
		restarter.Units = units
	}
	a := &Applier{Source: APISource{Client: client}, Restarter: restarter, Root: o.root, Logger: log}
	var res Result
	if o.all {
		res, err = a.All(ctx)
	} else {
		res, err = a.Keys(ctx, keys)
	}
	fmt.Fprintf(stdout, "wrote %d configuration files, restarted %d services, %d files failed\n", len(res.Written), len(res.Restarted), len(res.Failed))
	if err != nil {
		return fmt.Errorf("apply settings: %w", err)
	}
	if len(res.Failed) > 0 {
		log.Warn("some configuration files failed to render", "files", res.Failed)
	}
	return nil
}
