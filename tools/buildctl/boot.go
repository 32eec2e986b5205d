package buildctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/ready"
	"github.com/petrel-os/petrel/tools/image"
	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/qemu"
)

type bootFlags struct {
	bios       bool
	userData   string
	timeout    time.Duration
	consoleLog string
	persist    bool
	keep       bool
	quiet      bool
	memory     int
	measure    bool
	runs       int
	apiSocket  string
}

func (a *app) bootCmd() *cobra.Command {
	var f bootFlags
	cmd := &cobra.Command{
		Use:   "boot [IMAGE]",
		Short: "Boot an image in QEMU and wait until the host reports ready",
		Long: "Boot IMAGE (default: the variant's latest build) in QEMU: UEFI (OVMF) by default, SeaBIOS with\n" +
			"--bios; KVM when it is usable, software emulation otherwise. The serial console goes to the\n" +
			"terminal and to a log file. Exits 0 once the host prints \"" + ready.Marker + "\", 1 when it\n" +
			"does not within --timeout (the error shows the last console lines), or as soon as the console\n" +
			"shows that it cannot (a unit host ready needs failed, a kernel panic, a boot loop; the error\n" +
			"names the cause). --api-socket PATH serves the guest's API socket at PATH on this machine\n" +
			"(images with the debug-api feature) and keeps the VM running, reboots included, so that\n" +
			"`apiclient --socket-path PATH get|set|apply|reboot` drives it; see docs/vm.md.",
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			img := ""
			if len(args) == 1 {
				img = args[0]
			}
			return a.boot(cmd.Context(), img, f)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.bios, "bios", false, "boot with SeaBIOS instead of UEFI")
	fl.StringVar(&f.userData, "user-data", "", "TOML user-data file, attached as a CIDATA config drive")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Minute, "fail when the host is not ready after this long")
	fl.StringVar(&f.consoleLog, "console-log", "", "console log file (default build/logs/boot-<variant>.log)")
	fl.BoolVar(&f.persist, "persist", false, "write to the image (default: writes are discarded)")
	fl.BoolVar(&f.keep, "keep-running", false, "keep the VM running after it is ready, until it powers off or Ctrl-C")
	fl.BoolVar(&f.quiet, "quiet", false, "do not copy the console to the terminal")
	fl.IntVar(&f.memory, "memory", 1024, "guest memory in MiB")
	fl.BoolVar(&f.measure, "measure", false, "print boot figures: kernel start and host ready, against a floor boot of the same kernel that powers off at once")
	fl.IntVar(&f.runs, "runs", 3, "with --measure: boot the image and the floor this many times each, alternating, and report the medians")
	fl.StringVar(&f.apiSocket, "api-socket", "", "serve the guest's API socket at this path on this machine (implies --keep-running)")
	return cmd
}

// checkDiskImage fails unless path is a file that starts with a protective
// MBR and a GPT header.
func checkDiskImage(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: open image: %w", project.ErrInvalidInput, err)
	}
	defer f.Close()
	buf := make([]byte, 1024)
	if _, err := io.ReadFull(f, buf); err != nil || buf[510] != 0x55 || buf[511] != 0xaa || !bytes.Equal(buf[512:520], []byte("EFI PART")) {
		return fmt.Errorf("%w: %s is not a disk image: no protective MBR and GPT header", project.ErrInvalidInput, path)
	}
	return nil
}

func (a *app) boot(ctx context.Context, img string, f bootFlags) error {
	if f.measure && f.runs < 1 {
		return fmt.Errorf("%w: --runs %d: want at least 1", errUsage, f.runs)
	}
	if f.measure && f.apiSocket != "" {
		return fmt.Errorf("%w: --api-socket and --measure do not go together", errUsage)
	}
	if f.apiSocket != "" {
		f.keep = true
		abs, err := filepath.Abs(f.apiSocket)
		if err != nil {
			return fmt.Errorf("%w: --api-socket %q: %w", errUsage, f.apiSocket, err)
		}
		f.apiSocket = abs
	}
	var dataImg string
	logPath := f.consoleLog
	if img == "" {
		p, cfg, err := a.loadProject(ctx)
		if err != nil {
			return err
		}
		dir, err := image.Latest(cfg.BuildDir, cfg.Variant, cfg.Arch)
		if err != nil {
			return fmt.Errorf("%w: variant %s was not built for %s: %w (run buildctl make)", project.ErrInvalidInput, cfg.Variant, cfg.Arch, err)
		}
		if img, dataImg, err = image.FindDiskImage(dir); err != nil {
			return fmt.Errorf("%w: %w", project.ErrInvalidInput, err)
		}
		if logPath == "" {
			logPath = filepath.Join(cfg.BuildDir, "logs", "boot-"+cfg.Variant+".log")
		}
		_ = p
	}
	if err := checkDiskImage(img); err != nil {
		return err
	}
	if logPath == "" {
		logPath = img + ".console.log"
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return fmt.Errorf("create console log directory: %w", err)
	}
	// A VM that keeps running may reboot (through the API, for example).
	opts := qemu.Options{Image: img, DataImage: dataImg, Snapshot: !f.persist, MemoryMiB: f.memory, ConsoleLog: logPath,
		Reboot: f.keep, APISocket: f.apiSocket, APIWait: f.timeout, Logger: a.logger}
	if f.bios {
		opts.Firmware = qemu.BIOS
	}
	if !f.quiet {
		opts.Console = a.stdout
	}
	if f.userData != "" {
		ud, err := os.ReadFile(f.userData)
		if err != nil {
			return fmt.Errorf("%w: read user data: %w", project.ErrInvalidInput, err)
		}
		dir, err := os.MkdirTemp("", "petrel-boot-")
		if err != nil {
			return fmt.Errorf("create config drive directory: %w", err)
		}
		defer os.RemoveAll(dir)
		opts.ConfigDrive = filepath.Join(dir, "cidata.img")
		if err := qemu.ConfigDrive(ctx, ud, opts.ConfigDrive); err != nil {
			return err
		}
	}
	if f.measure {
		return a.measureBoots(ctx, opts, f.runs, f.timeout)
	}
	vm, err := qemu.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer vm.Stop()
	line, idx, err := vm.WaitReady(ctx, 0, f.timeout, qemu.Policy{})
	if err != nil {
		return fmt.Errorf("boot %s (console log %s): %w", filepath.Base(img), logPath, err)
	}
	fmt.Fprintf(a.stderr, "buildctl: host ready after %.1fs: %s\n", line.At.Seconds(), line.Text)
	if !f.keep {
		return nil
	}
	if f.apiSocket != "" {
		fmt.Fprintf(a.stderr, "buildctl: API socket %s (apiclient --socket-path %s get); Ctrl-C stops the VM\n", f.apiSocket, f.apiSocket)
		// A host without the agent after a minute has none.
		if vm.WaitAPISession(ctx, time.Minute) == 0 && ctx.Err() == nil {
			fmt.Fprintf(a.stderr, "buildctl: no API bridge agent answers in the guest: is the image built with the debug-api image feature? (docs/vm.md)\n")
		}
	}
	// Report every later boot (a reboot through the API) until the guest
	// powers off or Ctrl-C; a later boot that fails ends the VM.
	for {
		line, idx, err = vm.WaitReady(ctx, idx+1, 24*time.Hour, qemu.Policy{})
		var be *qemu.BootError
		switch {
		case err == nil:
			fmt.Fprintf(a.stderr, "buildctl: host ready again after %.1fs: %s\n", line.At.Seconds(), line.Text)
		case errors.As(err, &be):
			return fmt.Errorf("boot %s (console log %s): after a reboot: %w", filepath.Base(img), logPath, err)
		default:
			return nil // QEMU exited (the guest powered off) or Ctrl-C
		}
	}
}
