package ready

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/cli"
	"github.com/petrel-os/petrel/sources/selinux"
)

// Marker starts the line petrel-ready prints; `buildctl boot` waits for it
// on the serial console.
const Marker = "petrel: host ready"

// Unknown stands for a value petrel-ready could not determine.
const Unknown = "unknown"

// Options say where petrel-ready looks. DefaultOptions holds the host paths.
type Options struct {
	OSRelease   string // os-release file
	Cmdline     string // kernel command line
	SysBlockDir string // sysfs block devices
	DevDir      string // device nodes
	Hostname    string // the kernel's host name (/proc/sys/kernel/hostname)
	Motd        string // message of the day rendered from settings
	SELinuxFS   string // selinuxfs mount point
	SELinuxConf string // SELinux configuration (names the policy)
	Proc        string // procfs (this process's SELinux context)
}

// DefaultOptions returns the paths of a running Petrel host.
func DefaultOptions() Options {
	return Options{OSRelease: "/usr/lib/os-release", Cmdline: "/proc/cmdline", SysBlockDir: "/sys/class/block", DevDir: "/dev",
		Hostname: "/proc/sys/kernel/hostname", Motd: "/etc/motd",
		SELinuxFS: selinux.FS, SELinuxConf: selinux.ConfigPath, Proc: "/proc"}
}

// Line returns the ready line without its newline:
// "petrel: host ready: <pretty> build <build>, bank <bank>".
func Line(pretty, build, bank string) string {
	return fmt.Sprintf("%s: %s build %s, bank %s", Marker, pretty, build, bank)
}

// Report gathers the release and the booted bank and returns the ready
// line. When a part cannot be determined it is "unknown" in the line and
// the returned error says why; the line is always usable.
func Report(ctx context.Context, o Options) (string, error) {
	var errs []error
	pretty, build := Unknown, Unknown
	if f, err := os.Open(o.OSRelease); err != nil {
		errs = append(errs, fmt.Errorf("open os-release: %w", err))
	} else {
		vars, err := ParseOSRelease(f)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", o.OSRelease, err))
		}
		for _, f := range []struct {
			key string
			dst *string
		}{{"PRETTY_NAME", &pretty}, {"BUILD_ID", &build}} {
			if v := vars[f.key]; v != "" {
				*f.dst = v
			} else if err == nil {
				errs = append(errs, fmt.Errorf("read %s: no %s", o.OSRelease, f.key))
			}
		}
	}
	bank := Unknown
	if b, err := FindBank(ctx, o.Cmdline, o.SysBlockDir, o.DevDir); err != nil {
		errs = append(errs, fmt.Errorf("find booted bank: %w", err))
	} else {
		bank = b.String()
	}
	return Line(pretty, build, bank), errors.Join(errs...)
}

// Details returns the lines printed before the ready line: the SELinux
// status (SELinuxLine), the host name and the message of the day, both set
// from settings (user data), so that the console shows what the host was
// configured with. Missing files give no line.
func Details(o Options) []string {
	lines := []string{SELinuxLine(o)}
	if b, err := os.ReadFile(o.Hostname); err == nil && strings.TrimSpace(string(b)) != "" {
		lines = append(lines, "petrel: hostname "+strings.TrimSpace(string(b)))
	}
	if b, err := os.ReadFile(o.Motd); err == nil {
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			lines = append(lines, "petrel: motd: "+l)
		}
	}
	return lines
}

// SELinuxLine reports the SELinux mode, the policy /etc/selinux/config
// names and the context petrel-ready runs in (its type proves which policy
// the kernel has loaded):
// "petrel: selinux enforcing, policy petrel, context system_u:system_r:system_t:s0-s0:c0.c1023",
// or "petrel: selinux disabled".
func SELinuxLine(o Options) string {
	k := selinux.Kernel{FS: o.SELinuxFS}
	if !k.Enabled() {
		return "petrel: selinux " + selinux.Disabled
	}
	mode, policy, context := Unknown, Unknown, Unknown
	if on, err := k.Enforcing(); err == nil {
		mode = selinux.Permissive
		if on {
			mode = selinux.Enforcing
		}
	}
	if c, err := selinux.ReadConfig(o.SELinuxConf); err == nil {
		policy = c.Type
	}
	if c, err := selinux.CurrentContext(o.Proc); err == nil && c != "" {
		context = c
	}
	return fmt.Sprintf("petrel: selinux %s, policy %s, context %s", mode, policy, context)
}

// Main runs petrel-ready with args (without the program name): it prints
// the ready line to stdout and returns 0, or 1 when part of the line is
// unknown (the line is printed anyway, the reasons go to stderr), or 2 on
// bad usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, command(), args, stdout, stderr)
}

// command builds the petrel-ready command.
func command() *cobra.Command {
	o := DefaultOptions()
	cmd := &cobra.Command{
		Use:   "petrel-ready",
		Short: "Print the host ready line: release, build and booted bank",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			line, err := Report(cmd.Context(), o)
			for _, d := range Details(o) {
				fmt.Fprintln(cmd.OutOrStdout(), d)
			}
			if _, werr := fmt.Fprintln(cmd.OutOrStdout(), line); werr != nil {
				return errors.Join(err, fmt.Errorf("print ready line: %w", werr))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.OSRelease, "os-release", o.OSRelease, "os-release `file` to read PRETTY_NAME and BUILD_ID from")
	f.StringVar(&o.Cmdline, "cmdline", o.Cmdline, "kernel command line `file`")
	f.StringVar(&o.SysBlockDir, "sys-block", o.SysBlockDir, "sysfs `directory` of block devices")
	f.StringVar(&o.DevDir, "dev", o.DevDir, "`directory` of device nodes")
	f.StringVar(&o.Hostname, "hostname-file", o.Hostname, "`file` holding the host name")
	f.StringVar(&o.Motd, "motd", o.Motd, "message-of-the-day `file`")
	f.StringVar(&o.SELinuxFS, "selinuxfs", o.SELinuxFS, "`directory` where selinuxfs is mounted")
	f.StringVar(&o.SELinuxConf, "selinux-config", o.SELinuxConf, "SELinux configuration `file`")
	return cmd
}
