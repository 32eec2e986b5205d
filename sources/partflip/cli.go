package partflip

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/cli"
)

// Main runs the partflip command line with args (without the program name)
// and returns the exit code: 0 on success, 1 on failure, 2 on bad usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{opts: DefaultOptions(), stdout: stdout,
		log: slog.New(slog.NewTextHandler(stderr, nil)).With("component", "partflip")}
	return cli.Run(ctx, a.rootCmd(), args, stdout, stderr)
}

type app struct {
	opts   Options
	stdout io.Writer
	log    *slog.Logger
	// Test seams: held runs between the read and the write of a
	// transition, lockWaiting when the disk lock is held elsewhere.
	held, lockWaiting func()
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "partflip",
		Short: "Show and change the A/B boot state kept in the grubenv block on the EFI system partition",
		Args:  cobra.NoArgs,
	}
	f := root.PersistentFlags()
	f.StringVar(&a.opts.Disk, "disk", "", "OS disk or disk image (default: the disk with an EFI system partition)")
	f.Int64Var(&a.opts.ESPOffset, "esp-offset", -1, "byte offset of the EFI system partition on --disk; negative: from the GPT")
	f.Int64Var(&a.opts.EnvOffset, "env-offset", -1, "absolute byte offset of the grubenv sector; negative: find EFI/BOOT/grubenv on the ESP")
	f.StringVar(&a.opts.Booted, "booted", "", "booted bank A or B (default: from the PARTUUID on the kernel command line)")
	f.StringVar(&a.opts.CmdlinePath, "cmdline", a.opts.CmdlinePath, "kernel command line file")
	f.StringVar(&a.opts.SysBlockDir, "sys-block", a.opts.SysBlockDir, "sysfs block class directory used to find the disk")
	f.StringVar(&a.opts.DevDir, "dev", a.opts.DevDir, "device directory used to find the disk")
	for _, hidden := range []string{"cmdline", "sys-block", "dev"} {
		_ = f.MarkHidden(hidden)
	}
	root.AddCommand(a.statusCmd())
	for _, t := range []struct {
		use, short string
		fn         func(bootstate.State, bootstate.Bank) (bootstate.State, error)
	}{
		{"mark-successful-boot", "Mark the booted bank successful", bootstate.MarkSuccessful},
		{"clear-inactive", "Zero the inactive bank's priority, tries and successful flag", bootstate.ClearInactive},
		{"mark-inactive-valid", "Give the inactive bank one boot try", bootstate.MarkInactiveValid},
		{"upgrade-to-inactive", "Boot the inactive bank next (priority 2), keeping the booted one as fallback", bootstate.UpgradeToInactive},
		{"cancel-upgrade", "Undo upgrade-to-inactive", bootstate.CancelUpgrade},
		{"rollback-to-inactive", "Boot the inactive bank next if it booted before or has tries left", bootstate.RollbackToInactive},
	} {
		root.AddCommand(a.transitionCmd(t.use, t.short, t.fn))
	}
	return root
}

// Status is the JSON form of `partflip status --json`.
type Status struct {
	Disk      string              `json:"disk"`
	EnvOffset int64               `json:"env_offset"`
	Booted    *bootstate.Bank     `json:"booted"`
	A         bootstate.BankState `json:"a"`
	B         bootstate.BankState `json:"b"`
	// Next is the bank the bootloader will pick; NextSpendsTry and
	// NextFallback describe that boot as bootstate.Next does.
	Next          bootstate.Bank `json:"next"`
	NextSpendsTry bool           `json:"next_spends_try"`
	NextFallback  bool           `json:"next_fallback"`
}

func (a *app) statusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show both banks' priority, tries left and successful flag, and the booted bank",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			loc, err := Locate(ctx, a.opts)
			if err != nil {
				return err
			}
			st, err := loc.ReadState(ctx)
			if err != nil {
				return err
			}
			d := bootstate.Next(st)
			s := Status{Disk: loc.Disk, EnvOffset: loc.EnvOffset, A: st.A, B: st.B, Next: d.Bank, NextSpendsTry: d.SpentTry, NextFallback: d.Fallback}
			if loc.BootedKnown {
				b := loc.Booted
				s.Booted = &b
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			return writeStatus(a.stdout, s, loc.BootedWhy)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeStatus(w io.Writer, s Status, bootedWhy string) error {
	yes := map[bool]string{true: "yes", false: "no"}
	booted := "unknown (" + bootedWhy + ")"
	if s.Booted != nil {
		booted = s.Booted.String()
	}
	var err error
	pr := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	pr("disk:      %s\n", s.Disk)
	pr("grubenv:   offset %d\n", s.EnvOffset)
	pr("booted:    %s\n", booted)
	for _, b := range []bootstate.Bank{bootstate.BankA, bootstate.BankB} {
		bs := s.A
		if b == bootstate.BankB {
			bs = s.B
		}
		pr("bank %s:    priority %d  tries %d  successful %s\n", b, bs.Priority, bs.TriesLeft, yes[bs.Successful])
	}
	note := ""
	switch {
	case s.NextFallback:
		note = " (no bank is bootable; booted anyway)"
	case s.NextSpendsTry:
		note = " (spends a try)"
	}
	pr("next boot: %s%s\n", s.Next, note)
	return err
}

func (a *app) transitionCmd(use, short string, fn func(bootstate.State, bootstate.Bank) (bootstate.State, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			loc, err := Locate(ctx, a.opts)
			if err != nil {
				return err
			}
			before, after, err := loc.change(ctx, use, fn, a.held, a.lockWaiting)
			if err != nil {
				return err
			}
			a.log.Info("boot state changed", "op", use, "disk", loc.Disk, "booted", loc.Booted.String(),
				slog.Any("before", before), slog.Any("after", after))
			return nil
		},
	}
}

// ReadState reads the boot state. It takes no lock: one sector read is
// atomic.
func (loc *Location) ReadState(ctx context.Context) (bootstate.State, error) {
	f, err := openForRead(loc.Disk)
	if err != nil {
		return bootstate.State{}, err
	}
	defer f.Close()
	s, _, err := bootstate.Read(ctx, f, loc.EnvOffset)
	if err != nil {
		return bootstate.State{}, fmt.Errorf("read boot state of %s: %w", loc.Disk, err)
	}
	return s, nil
}

// Change applies the transition fn (bootstate.ClearInactive, ...), named
// op in errors, to the boot state with the booted bank: it takes the
// disk's lock (waiting up to 30 s for another transition), reads the
// sector, and writes it back changed in one sector write followed by an
// fsync (nothing is written when the block stays the same). It returns
// the state before and after. The booted bank must be known.
func (loc *Location) Change(ctx context.Context, op string, fn func(bootstate.State, bootstate.Bank) (bootstate.State, error)) (before, after bootstate.State, err error) {
	return loc.change(ctx, op, fn, nil, nil)
}

// change is Change with the test seams: held runs between the read and
// the write, lockWaiting when the lock is held elsewhere.
func (loc *Location) change(ctx context.Context, op string, fn func(bootstate.State, bootstate.Bank) (bootstate.State, error), held, lockWaiting func()) (before, after bootstate.State, err error) {
	if !loc.BootedKnown {
		return before, after, fmt.Errorf("%s: %w: %s; pass --booted", op, ErrBootedUnknown, loc.BootedWhy)
	}
	f, err := openForWrite(loc.Disk)
	if err != nil {
		return before, after, err
	}
	defer f.Close()
	// Transitions read, change and write the one sector: two at once
	// would lose one of the changes.
	if err := lockDisk(ctx, f, lockWaiting); err != nil {
		return before, after, fmt.Errorf("%s: %w", op, err)
	}
	before, after, err = bootstate.Update(ctx, f, loc.EnvOffset, func(s bootstate.State) (bootstate.State, error) {
		if held != nil {
			held()
		}
		return fn(s, loc.Booted)
	})
	if err != nil {
		return before, after, fmt.Errorf("%s on %s: %w", op, loc.Disk, err)
	}
	if err := f.Close(); err != nil {
		return before, after, fmt.Errorf("close %s: %w", loc.Disk, err)
	}
	return before, after, nil
}
