package hostctr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
)

// RunHost runs host container name from its settings until ctx ends (the
// unit is stopped) or its task exits. A task that exits is an error, so
// that systemd restarts the unit (Restart=always); so is a failure to get
// the image or start the task. Each step goes to the status document.
func (r *Runner) RunHost(ctx context.Context, c *apiclient.Client, name string) error {
	rep := &reporter{st: api.ContainerStatus{ID: containerID(KindHost, name), Type: string(KindHost)}, w: r.status, log: r.log}
	st, report := &rep.st, rep.set
	s, err := readSettings(ctx, c)
	if err != nil {
		report(api.ContainerFailed, err)
		return err
	}
	hc, ok := s.HostContainers[name]
	if !ok {
		err := fmt.Errorf("host container %s: no settings.host-containers.%s", name, name)
		report(api.ContainerFailed, err)
		return err
	}
	st.Source, st.Superpowered = hc.Source, hc.Superpowered
	if !hc.Enabled {
		report(api.ContainerDisabled, nil)
		r.log.Info("host container is disabled", "container", name)
		return nil
	}
	ud, err := decodeUserData("settings.host-containers."+name+".user-data", hc.UserData)
	if err != nil {
		report(api.ContainerFailed, err)
		return fmt.Errorf("host container %s: %w", name, err)
	}
	report(api.ContainerPulling, nil)
	code, err := r.Run(ctx, Spec{Kind: KindHost, Name: name, Source: hc.Source, Superpowered: hc.Superpowered,
		UserData: ud, Registry: s.ContainerRegistry}, func(pid uint32, image string) {
		st.PID, st.Image = pid, image
		report(api.ContainerRunning, nil)
		r.log.Info("host container running", "container", name, "source", hc.Source, "pid", pid, "image", image)
	})
	switch {
	case ctx.Err() != nil && err != nil && errors.Is(err, ctx.Err()):
		st.PID = 0
		report(api.ContainerStopped, nil)
		r.log.Info("host container stopped", "container", name)
		return nil
	case err != nil:
		st.PID = 0
		report(api.ContainerFailed, err)
		return fmt.Errorf("host container %s: %w", name, err)
	}
	st.PID, st.ExitCode = 0, &code
	err = fmt.Errorf("host container %s: its task exited with status %d", name, code)
	report(api.ContainerExited, err)
	return err
}

// Units starts and stops systemd units; render.DBusUnits is the real one.
// Start and restart only queue the job: at boot the host containers'
// units are ordered after bootstrap-containers.service, which is ordered
// after the settings-applier that runs Configure. Stop waits. Active
// tells whether a unit runs (or is starting or stopping) without loading
// it.
type Units interface {
	StartUnit(ctx context.Context, unit string) error
	RestartUnit(ctx context.Context, unit string) error
	StopUnit(ctx context.Context, unit string) error
	Active(ctx context.Context, unit string) (bool, error)
}

// hostUnit is the unit of host container name.
func hostUnit(name string) string { return "host-containers@" + name + ".service" }

// Configure is the restart command of the host-containers service: it
// starts each enabled host container's unit and stops each disabled one.
// changed lists the changed settings (CHANGED_SETTINGS); empty means all
// (boot, or settings-applier --all): then running units are left alone.
// A container whose own settings changed, or every container when the
// registry settings changed, is restarted. One container's failure does
// not stop the others; all failures are returned together.
func Configure(ctx context.Context, s *Settings, changed []string, units Units, statusDir string, log *slog.Logger) error {
	log = logger(log)
	status := statusWriter{dir: statusDir}
	all := len(changed) == 0 || slices.ContainsFunc(changed, func(k string) bool {
		return strings.HasPrefix(k, "settings.container-registry")
	})
	names := make([]string, 0, len(s.HostContainers))
	for n := range s.HostContainers {
		names = append(names, n)
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		hc := s.HostContainers[name]
		prefix := "settings.host-containers." + name + "."
		touched := slices.ContainsFunc(changed, func(k string) bool { return strings.HasPrefix(k+".", prefix) })
		if !all && !touched {
			continue
		}
		unit := hostUnit(name)
		var err error
		switch {
		case !hc.Enabled:
			// Only a unit that runs is stopped: at boot none does, and a
			// stop job would have systemd load the unit and the boot wait
			// for the job (0.2-0.3 s under emulation, on the way to host
			// ready). If systemd cannot say, the stop is asked for.
			if active, aerr := units.Active(ctx, unit); aerr != nil || active {
				err = units.StopUnit(ctx, unit)
			}
			if werr := status.write(api.ContainerStatus{ID: name, Type: string(KindHost), Source: hc.Source,
				Superpowered: hc.Superpowered, State: api.ContainerDisabled}); werr != nil {
				log.Warn("write container status", "container", name, "error", werr)
			}
		case len(changed) == 0:
			err = units.StartUnit(ctx, unit)
		default:
			err = units.RestartUnit(ctx, unit)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("host container %s: %w", name, err))
			continue
		}
		log.Info("host container configured", "container", name, "enabled", hc.Enabled)
	}
	return errors.Join(errs...)
}
