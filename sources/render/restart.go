package render

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/coreos/go-systemd/v22/dbus"

	"github.com/petrel-os/petrel/sources/multicall"
	"github.com/petrel-os/petrel/sources/settings"
)

// Restarter makes services pick up rewritten configuration.
type Restarter interface {
	// Restart restarts service svc; changed lists the changed keys that
	// affect it, or is nil when everything is applied.
	Restart(ctx context.Context, name string, svc settings.Service, changed []string) error
	// DaemonReload makes systemd reread unit files.
	DaemonReload(ctx context.Context) error
}

// Units is the part of systemd's manager API that SystemRestarter uses.
type Units interface {
	TryRestartUnit(ctx context.Context, unit string) error
	ReloadOrTryRestartUnit(ctx context.Context, unit string) error
	Reload(ctx context.Context) error
}

// SystemRestarter runs each service's restart-commands. A command
// "[/usr]/bin/systemctl try-restart|try-reload-or-restart|reload-or-try-restart UNIT..."
// goes to Units (systemd over D-Bus) instead of spawning systemctl. A
// command whose program is a link to Self named after one of Programs
// (settings-applier set-hostname, host-ctr configure) runs in this
// process, with the changed keys in its context (settings.WithChanged):
// under QEMU's emulation each new process of the agents' binary costs
// 0.1-0.3 s of boot. Any other command is split on single spaces and run
// without a shell, with settings.ChangedEnv set to the space-separated
// changed keys.
type SystemRestarter struct {
	Units Units
	// Programs and Self (this process's executable) enable running the
	// agents' commands in process; nil or empty runs every command as a
	// new process.
	Programs multicall.Programs
	Self     string
	// Output receives what each command printed (settings-applier passes
	// its stderr); nil discards it unless the command fails.
	Output io.Writer
}

// Restart implements Restarter.
func (r SystemRestarter) Restart(ctx context.Context, name string, svc settings.Service, changed []string) error {
	for _, cmdline := range svc.RestartCommands {
		argv := strings.Split(cmdline, " ")
		if handled, err := r.systemctl(ctx, argv); handled {
			if err != nil {
				return fmt.Errorf("restart service %s: %w", name, err)
			}
			continue
		}
		if run, ok := r.Programs.Find(r.Self, argv[0]); ok {
			if err := r.runProgram(ctx, run, argv[1:], changed); err != nil {
				return fmt.Errorf("restart service %s: run %q in process: %w", name, cmdline, err)
			}
			continue
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = os.Environ()
		if changed != nil {
			cmd.Env = append(cmd.Env, settings.ChangedEnv+"="+strings.Join(changed, " "))
		}
		out, err := cmd.CombinedOutput()
		if r.Output != nil {
			r.Output.Write(out)
		}
		if err != nil {
			return fmt.Errorf("restart service %s: run %q: %w: %s", name, cmdline, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// runProgram runs an agent in this process as its command line would.
func (r SystemRestarter) runProgram(ctx context.Context, run multicall.Program, args, changed []string) error {
	var out bytes.Buffer
	code := run(settings.WithChanged(ctx, changed), args, &out, &out)
	if r.Output != nil {
		r.Output.Write(out.Bytes())
	}
	if code != 0 {
		return fmt.Errorf("exit status %d: %s", code, strings.TrimSpace(out.String()))
	}
	return nil
}

func (r SystemRestarter) systemctl(ctx context.Context, argv []string) (bool, error) {
	if len(argv) < 3 || filepath.Base(argv[0]) != "systemctl" || r.Units == nil {
		return false, nil
	}
	var op func(context.Context, string) error
	switch argv[1] {
	case "try-restart":
		op = r.Units.TryRestartUnit
	case "try-reload-or-restart", "reload-or-try-restart":
		op = r.Units.ReloadOrTryRestartUnit
	default:
		return false, nil
	}
	for _, unit := range argv[2:] {
		if strings.HasPrefix(unit, "-") {
			return false, nil // flags: leave it to systemctl
		}
	}
	for _, unit := range argv[2:] {
		if err := op(ctx, unit); err != nil {
			return true, err
		}
	}
	return true, nil
}

// DaemonReload implements Restarter.
func (r SystemRestarter) DaemonReload(ctx context.Context) error {
	if r.Units == nil {
		return nil
	}
	return r.Units.Reload(ctx)
}

// DBusUnits talks to systemd over the system D-Bus.
type DBusUnits struct {
	Conn *dbus.Conn
}

// ConnectSystemd connects to systemd's D-Bus API.
func ConnectSystemd(ctx context.Context) (*DBusUnits, error) {
	c, err := dbus.NewWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	return &DBusUnits{Conn: c}, nil
}

// Close closes the connection.
func (u *DBusUnits) Close() { u.Conn.Close() }

func (u *DBusUnits) wait(ctx context.Context, verb, unit string, start func(chan<- string) (int, error)) error {
	ch := make(chan string, 1)
	if _, err := start(ch); err != nil {
		return fmt.Errorf("%s %s: %w", verb, unit, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s %s: job %s", verb, unit, res)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", verb, unit, ctx.Err())
	}
}

// TryRestartUnit restarts unit if it is running.
func (u *DBusUnits) TryRestartUnit(ctx context.Context, unit string) error {
	return u.wait(ctx, "try-restart", unit, func(ch chan<- string) (int, error) {
		return u.Conn.TryRestartUnitContext(ctx, unit, "replace", ch)
	})
}

// ReloadOrTryRestartUnit reloads or restarts unit if it is running.
func (u *DBusUnits) ReloadOrTryRestartUnit(ctx context.Context, unit string) error {
	return u.wait(ctx, "reload-or-try-restart", unit, func(ch chan<- string) (int, error) {
		return u.Conn.ReloadOrTryRestartUnitContext(ctx, unit, "replace", ch)
	})
}

// Reload is systemctl daemon-reload.
func (u *DBusUnits) Reload(ctx context.Context) error {
	if err := u.Conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("reload systemd: %w", err)
	}
	return nil
}

// StartUnit queues a start job for unit (systemctl start --no-block): the
// unit may be ordered after the caller's own unit.
func (u *DBusUnits) StartUnit(ctx context.Context, unit string) error {
	if _, err := u.Conn.StartUnitContext(ctx, unit, "replace", nil); err != nil {
		return fmt.Errorf("start %s: %w", unit, err)
	}
	return nil
}

// StartUnitAndWait starts unit and waits until the job is done (for a
// Type=notify service: until it reported ready).
func (u *DBusUnits) StartUnitAndWait(ctx context.Context, unit string) error {
	return u.wait(ctx, "start", unit, func(ch chan<- string) (int, error) {
		return u.Conn.StartUnitContext(ctx, unit, "replace", ch)
	})
}

// RestartUnit queues a restart job for unit, which starts it if it is not
// running (systemctl restart --no-block).
func (u *DBusUnits) RestartUnit(ctx context.Context, unit string) error {
	if _, err := u.Conn.RestartUnitContext(ctx, unit, "replace", nil); err != nil {
		return fmt.Errorf("restart %s: %w", unit, err)
	}
	return nil
}

// Active reports whether unit is active, activating, deactivating or
// reloading. It lists loaded units only, so it does not load unit: one
// systemd has not loaded is not active.
func (u *DBusUnits) Active(ctx context.Context, unit string) (bool, error) {
	units, err := u.Conn.ListUnitsByPatternsContext(ctx, []string{"active", "activating", "deactivating", "reloading"}, []string{unit})
	if err != nil {
		return false, fmt.Errorf("read the state of %s: %w", unit, err)
	}
	return len(units) > 0, nil
}

// StopUnit stops unit and waits for the job.
func (u *DBusUnits) StopUnit(ctx context.Context, unit string) error {
	return u.wait(ctx, "stop", unit, func(ch chan<- string) (int, error) {
		return u.Conn.StopUnitContext(ctx, unit, "replace", ch)
	})
}
