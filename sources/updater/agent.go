package updater

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/cli"
	"github.com/petrel-os/petrel/sources/flock"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/partflip"
)

// Main is the updater agent (upstream's updog): it checks for updates,
// writes one into the inactive bank, flips the boot state to it or back,
// and tells what the banks hold. See docs/updates.md. Exit codes: 0 done,
// 1 failed, 2 usage, 3 no update (ExitNoUpdate), 4 another updater
// command holds the lock (ExitLocked).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &agent{o: defaultAgentOptions(), stdout: stdout, stderr: stderr}
	return cli.Run(ctx, a.command(), args, stdout, stderr)
}

// agentOptions are the agent's command-line settings; the defaults are
// a host's.
type agentOptions struct {
	socket, root, stateDir, lockPath, osRelease, logLevel string
	disk                                                  partflip.Options
}

func defaultAgentOptions() agentOptions {
	return agentOptions{socket: api.DefaultSocketPath, root: DefaultRootPath, stateDir: DefaultStateDir,
		lockPath: DefaultLockPath, osRelease: api.DefaultOSRelease, logLevel: "info", disk: partflip.DefaultOptions()}
}

// agent is one run of the updater.
type agent struct {
	o              agentOptions
	stdout, stderr io.Writer
	log            *slog.Logger
	// step, when set, is called before each step that writes to the disk
	// or to PRIVATE (tests stop the agent there).
	step func(name string)
	// fetch tunes downloads (tests shorten the timeouts).
	fetch FetchOptions
}

func (a *agent) command() *cobra.Command {
	root := &cobra.Command{
		Use:   "updater",
		Short: "Check for, write and apply signed OS updates (the A/B banks)",
		Long: "Check the update repository named by settings.updates for a new release, write it into the\n" +
			"inactive bank in an order that keeps the host bootable at every instant, and make the next\n" +
			"boot use it (or not). The repository's metadata is verified from the root shipped in the\n" +
			"image; see docs/updates.md. Exit codes: 0 done, 1 failed, 2 usage, 3 no update, 4 another\n" +
			"updater command is running.",
		Args: cobra.NoArgs,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			log, err := cli.NewLogger(a.stderr, a.o.logLevel, "updater")
			a.log = log
			return err
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&a.o.socket, "socket-path", a.o.socket, "API socket, for settings.updates and the reboot")
	f.StringVar(&a.o.root, "root-path", a.o.root, "trusted TUF root metadata shipped in the image")
	f.StringVar(&a.o.stateDir, "state-directory", a.o.stateDir, "the agent's state on PRIVATE: metadata cache, what the next boot's migrator reads, staged.json")
	f.StringVar(&a.o.logLevel, "log-level", a.o.logLevel, "debug, info, warn or error")
	f.StringVar(&a.o.disk.Disk, "disk", "", "OS disk or disk image (default: the disk with an EFI system partition)")
	f.StringVar(&a.o.lockPath, "lock-path", a.o.lockPath, "lock file of the commands that change the disk")
	f.StringVar(&a.o.osRelease, "os-release", a.o.osRelease, "os-release file of the running image")
	f.StringVar(&a.o.disk.Booted, "booted", "", "booted bank A or B (default: from the PARTUUID on the kernel command line)")
	f.StringVar(&a.o.disk.CmdlinePath, "cmdline", a.o.disk.CmdlinePath, "kernel command line file")
	f.StringVar(&a.o.disk.SysBlockDir, "sys-block", a.o.disk.SysBlockDir, "sysfs block class directory used to find the disk")
	f.StringVar(&a.o.disk.DevDir, "dev", a.o.disk.DevDir, "device directory used to find the disk")
	for _, hidden := range []string{"lock-path", "os-release", "booted", "cmdline", "sys-block", "dev"} {
		_ = f.MarkHidden(hidden)
	}
	root.AddCommand(a.checkCmd(), a.updateImageCmd(), a.applyCmd(), a.revertCmd(), a.updateCmd(), a.statusCmd())
	return root
}

// output prints v as indented JSON with --json, else text.
func (a *agent) output(asJSON bool, v any, text func(io.Writer) error) error {
	if !asJSON {
		return text(a.stdout)
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

func (a *agent) checkCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check-update",
		Short: "Refresh the signed metadata and list the applicable updates (exit 3: none chosen)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := a.plan(cmd.Context(), "")
			if err != nil {
				return err
			}
			res := p.checkResult()
			if err := a.output(asJSON, res, func(w io.Writer) error { return writeCheck(w, res) }); err != nil {
				return err
			}
			if res.ChosenUpdate == nil {
				return cli.WithExitCode(ExitNoUpdate, fmt.Errorf("no update for %s %s %s", res.OS.Variant, res.OS.Arch, res.OS.Version))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeCheck(w io.Writer, res CheckResult) error {
	var vs []string
	for _, v := range res.AvailableUpdates {
		vs = append(vs, v.String())
	}
	chosen := "none"
	if res.ChosenUpdate != nil {
		chosen = res.ChosenUpdate.Version.String()
	}
	_, err := fmt.Fprintf(w, "running:   %s %s %s\navailable: %s\nchosen:    %s\n",
		res.OS.Variant, res.OS.Arch, res.OS.Version, strings.Join(vs, ", "), chosen)
	return err
}

func (a *agent) updateImageCmd() *cobra.Command {
	var asJSON bool
	var version string
	cmd := &cobra.Command{
		Use:   "update-image",
		Short: "Write the chosen update (or --version) into the inactive bank and mark it valid",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.locked(cmd.Context(), asJSON, func(ctx context.Context, loc *partflip.Location) error {
				_, err := a.updateImage(ctx, loc, version)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the banks' status as JSON afterwards")
	cmd.Flags().StringVar(&version, "version", "", "write this version of the variant instead of the chosen update")
	return cmd
}

func (a *agent) updateCmd() *cobra.Command {
	var asJSON, reboot bool
	var version string
	cmd := &cobra.Command{
		Use:   "update",
		Short: "update-image, then update-apply (and reboot with --reboot)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.locked(cmd.Context(), asJSON, func(ctx context.Context, loc *partflip.Location) error {
				if _, err := a.updateImage(ctx, loc, version); err != nil {
					return err
				}
				return a.apply(ctx, loc, reboot)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the banks' status as JSON afterwards")
	cmd.Flags().StringVar(&version, "version", "", "write this version of the variant instead of the chosen update")
	cmd.Flags().BoolVar(&reboot, "reboot", false, "reboot through the API afterwards")
	return cmd
}

func (a *agent) applyCmd() *cobra.Command {
	var asJSON, reboot bool
	cmd := &cobra.Command{
		Use:   "update-apply",
		Short: "Boot the written inactive bank next, keeping the running one as fallback (one sector write)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.locked(cmd.Context(), asJSON, func(ctx context.Context, loc *partflip.Location) error {
				return a.apply(ctx, loc, reboot)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the banks' status as JSON afterwards")
	cmd.Flags().BoolVar(&reboot, "reboot", false, "reboot through the API afterwards")
	return cmd
}

func (a *agent) revertCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "update-revert",
		Short: "Undo update-apply: boot the running bank next; the written one stays valid",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.locked(cmd.Context(), asJSON, func(ctx context.Context, loc *partflip.Location) error {
				return a.change(ctx, loc, "cancel-upgrade", bootstate.CancelUpgrade)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the banks' status as JSON afterwards")
	return cmd
}

func (a *agent) statusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the banks, what they hold and which boots next (no network, no lock)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			loc, err := partflip.Locate(cmd.Context(), a.o.disk)
			if err != nil {
				return err
			}
			return a.printStatus(cmd.Context(), loc, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// locked runs fn with the agent's lock held (ExitLocked when another
// command holds it past flock.Grace) and the disk located, then prints
// the banks' status.
func (a *agent) locked(ctx context.Context, asJSON bool, fn func(context.Context, *partflip.Location) error) error {
	lctx, cancel := context.WithTimeout(ctx, flock.Grace)
	unlock, err := lock(lctx, a.o.lockPath)
	cancel()
	if errors.Is(err, flock.ErrLocked) && ctx.Err() == nil {
		return cli.WithExitCode(ExitLocked, fmt.Errorf("another updater command is running: %w", err))
	}
	if err != nil {
		return err
	}
	defer unlock()
	loc, err := partflip.Locate(ctx, a.o.disk)
	if err != nil {
		return err
	}
	if !loc.BootedKnown {
		return fmt.Errorf("%w: %s", partflip.ErrBootedUnknown, loc.BootedWhy)
	}
	if err := fn(ctx, loc); err != nil {
		return err
	}
	return a.printStatus(ctx, loc, asJSON)
}

// status reads what the banks hold.
func (a *agent) status(ctx context.Context, loc *partflip.Location) (BankStatus, error) {
	if !loc.BootedKnown {
		return BankStatus{}, fmt.Errorf("%w: %s", partflip.ErrBootedUnknown, loc.BootedWhy)
	}
	state, err := loc.ReadState(ctx)
	if err != nil {
		return BankStatus{}, err
	}
	h, err := a.host()
	if err != nil {
		return BankStatus{}, err
	}
	staged, err := readStaged(a.o.stateDir)
	if err != nil {
		return BankStatus{}, err
	}
	return bankStatus(state, loc.Booted, h.image(), staged), nil
}

func (a *agent) printStatus(ctx context.Context, loc *partflip.Location, asJSON bool) error {
	st, err := a.status(ctx, loc)
	if err != nil {
		return err
	}
	return a.output(asJSON, st, func(w io.Writer) error { return writeStatus(w, st) })
}

func writeStatus(w io.Writer, st BankStatus) error {
	var err error
	for _, p := range []struct {
		role string
		p    Partition
	}{{"active", st.ActivePartition}, {"staging", st.StagingPartition}} {
		img := "nothing staged"
		if p.p.Image != nil {
			img = fmt.Sprintf("%s %s %s", p.p.Image.Variant, p.p.Image.Arch, p.p.Image.Version)
		}
		var notes []string
		if p.p.NextToBoot {
			notes = append(notes, "next to boot")
		}
		if !p.p.Valid {
			notes = append(notes, "not bootable")
		}
		note := ""
		if len(notes) > 0 {
			note = " (" + strings.Join(notes, ", ") + ")"
		}
		if err == nil {
			_, err = fmt.Fprintf(w, "%-8s bank %s: %s%s\n", p.role, p.p.Bank, img, note)
		}
	}
	return err
}

// host is what the running image is.
type host struct {
	Host
	buildID string
}

func (h host) image() Image { return Image{Variant: h.Variant, Arch: h.Arch, Version: h.Version} }

// host reads the running image from os-release.
func (a *agent) host() (host, error) {
	o, err := api.ReadOSRelease(a.o.osRelease)
	if err != nil {
		return host{}, err
	}
	if o.VariantID == "" {
		return host{}, fmt.Errorf("read os-release %s: no VARIANT_ID", a.o.osRelease)
	}
	v, err := manifest.ParseVersion(o.VersionID)
	if err != nil {
		return host{}, fmt.Errorf("read os-release %s: VERSION_ID: %w", a.o.osRelease, err)
	}
	return host{Host: Host{Variant: o.VariantID, Arch: o.Arch, Version: v}, buildID: o.BuildID}, nil
}

// Settings are settings.updates.
type Settings struct {
	MetadataBaseURL string `json:"metadata-base-url"`
	TargetsBaseURL  string `json:"targets-base-url"`
	Seed            *int64 `json:"seed"`
	VersionLock     string `json:"version-lock"`
	IgnoreWaves     bool   `json:"ignore-waves"`
}

// settings reads settings.updates through the API and checks that the
// agent can use them.
func (a *agent) settings(ctx context.Context) (Settings, error) {
	c := apiclient.New(a.o.socket)
	defer c.Close()
	m, err := c.Get(ctx, "settings.updates")
	if err != nil {
		return Settings{}, fmt.Errorf("read settings.updates: %w", err)
	}
	raw, err := json.Marshal(m["updates"])
	if err != nil {
		return Settings{}, fmt.Errorf("read settings.updates: %w", err)
	}
	var s Settings
	if err := json.Unmarshal(raw, &s); err != nil {
		return Settings{}, fmt.Errorf("read settings.updates: %w", err)
	}
	var missing []string
	if s.MetadataBaseURL == "" {
		missing = append(missing, "settings.updates.metadata-base-url")
	}
	if s.TargetsBaseURL == "" {
		missing = append(missing, "settings.updates.targets-base-url")
	}
	if s.Seed == nil {
		missing = append(missing, "settings.updates.seed")
	}
	if len(missing) > 0 {
		return Settings{}, fmt.Errorf("read settings.updates: %s not set", strings.Join(missing, ", "))
	}
	return s, nil
}

// expandURL replaces {variant} and {arch} in a repository URL setting, so
// that one default serves every variant.
func expandURL(u string, h host) string {
	return strings.NewReplacer("{variant}", url.PathEscape(h.Variant), "{arch}", url.PathEscape(h.Arch)).Replace(u)
}

// client returns the TUF client of the repository settings name.
func (a *agent) client(s Settings, h host) (*Client, error) {
	root, err := os.ReadFile(a.o.root)
	if err != nil {
		return nil, fmt.Errorf("read trusted root: %w", err)
	}
	fetch := a.fetch
	fetch.Query = url.Values{"seed": {strconv.FormatInt(*s.Seed, 10)}, "version": {h.Version.String()}}
	return New(Config{
		MetadataURL: expandURL(s.MetadataBaseURL, h),
		TargetsURL:  expandURL(s.TargetsBaseURL, h),
		TrustedRoot: root,
		CacheDir:    MetadataDir(a.o.stateDir),
		Fetch:       fetch,
		Logger:      a.log,
	})
}
