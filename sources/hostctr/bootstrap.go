package hostctr

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
)

// bootstrapTx is the API transaction in which a "once" container is
// turned off.
const bootstrapTx = "host-ctr-bootstrap"

// ErrEssentialFailed is returned when an essential bootstrap container
// failed: the boot must not be marked successful.
var ErrEssentialFailed = errors.New("an essential bootstrap container failed")

// RunBootstrap runs every bootstrap container whose mode is not off, one
// at a time in name order, each to completion. After a "once" container
// succeeds, its mode is set to off through the API. A failed container
// is logged and reported in its status; the others still run. The error
// wraps ErrEssentialFailed when an essential one failed. ensure, if not
// nil, is called before the first container runs (host-ctr starts the
// host containerd with it, so that a host without bootstrap containers
// does not wait for one at boot); its failure fails every container that
// was to run.
func (r *Runner) RunBootstrap(ctx context.Context, c *apiclient.Client, ensure func(context.Context) error) error {
	s, err := readSettings(ctx, c)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(s.BootstrapContainers))
	for n := range s.BootstrapContainers {
		names = append(names, n)
	}
	slices.Sort(names)
	var essential []error
	var ensureErr error
	for _, name := range names {
		bc := s.BootstrapContainers[name]
		rep := &reporter{st: api.ContainerStatus{ID: containerID(KindBootstrap, name), Type: string(KindBootstrap),
			Source: bc.Source, Essential: bc.Essential}, w: r.status, log: r.log}
		st, report := &rep.st, rep.set
		if bc.Mode == "" || bc.Mode == ModeOff {
			report(api.ContainerOff, nil)
			continue
		}
		if ensure != nil {
			ensureErr, ensure = ensure(ctx), nil
		}
		err := ensureErr
		if err != nil {
			err = fmt.Errorf("bootstrap container %s: %w", name, err)
			report(api.ContainerFailed, err)
		} else {
			err = r.runBootstrapOne(ctx, name, bc, s.ContainerRegistry, st, report)
		}
		if err == nil && bc.Mode == ModeOnce {
			if err = turnOff(ctx, c, name); err != nil {
				report(api.ContainerFailed, err)
			}
		}
		if err == nil {
			r.log.Info("bootstrap container succeeded", "container", name, "mode", bc.Mode)
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if bc.Essential {
			r.log.Error("essential bootstrap container failed; the boot will not be marked successful", "container", name, "error", err)
			essential = append(essential, err)
		} else {
			r.log.Error("bootstrap container failed", "container", name, "error", err)
		}
	}
	if len(essential) > 0 {
		return fmt.Errorf("%w: %w", ErrEssentialFailed, errors.Join(essential...))
	}
	return nil
}

// runBootstrapOne runs one bootstrap container to completion.
func (r *Runner) runBootstrapOne(ctx context.Context, name string, bc BootstrapContainer, reg RegistryConfig,
	st *api.ContainerStatus, report func(api.ContainerState, error)) error {
	ud, err := decodeUserData("settings.bootstrap-containers."+name+".user-data", bc.UserData)
	if err != nil {
		err = fmt.Errorf("bootstrap container %s: %w", name, err)
		report(api.ContainerFailed, err)
		return err
	}
	report(api.ContainerPulling, nil)
	code, err := r.Run(ctx, Spec{Kind: KindBootstrap, Name: name, Source: bc.Source, UserData: ud, Registry: reg},
		func(pid uint32, image string) {
			st.PID, st.Image = pid, image
			report(api.ContainerRunning, nil)
			r.log.Info("bootstrap container running", "container", name, "source", bc.Source, "pid", pid)
		})
	st.PID = 0
	if err != nil {
		err = fmt.Errorf("bootstrap container %s: %w", name, err)
		report(api.ContainerFailed, err)
		return err
	}
	st.ExitCode = &code
	if code != 0 {
		err = fmt.Errorf("bootstrap container %s: exited with status %d", name, code)
		report(api.ContainerFailed, err)
		return err
	}
	report(api.ContainerSucceeded, nil)
	return nil
}

// turnOff sets a once container's mode to off through the API.
func turnOff(ctx context.Context, c *apiclient.Client, name string) error {
	patch := map[string]any{"bootstrap-containers": map[string]any{name: map[string]any{"mode": ModeOff}}}
	if err := c.Set(ctx, bootstrapTx, patch); err != nil {
		return fmt.Errorf("set settings.bootstrap-containers.%s.mode to off: %w", name, err)
	}
	if _, err := c.CommitAndApply(ctx, bootstrapTx); err != nil {
		return fmt.Errorf("commit settings.bootstrap-containers.%s.mode = off: %w", name, err)
	}
	return nil
}
