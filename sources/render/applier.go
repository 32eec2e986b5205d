package render

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/petrel-os/petrel/sources/settings"
)

// Applier renders configuration files and restarts affected services. It
// satisfies apiserver's Applier interface.
type Applier struct {
	Source    Source
	Restarter Restarter
	// Root prefixes every configuration file path and template path; ""
	// means "/". Tests point it at a temporary directory.
	Root   string
	Logger *slog.Logger
}

// Result says what one Apply did.
type Result struct {
	Written   []string // configuration file paths (without Root), sorted
	Restarted []string // service names, sorted
	Failed    []string // configuration files that failed (non-strict mode)
}

// Apply implements apiserver.Applier: with keys, the services affected by
// those keys are rendered strictly and restarted; with nil keys every file
// is rendered non-strictly and every service restarted.
func (a *Applier) Apply(ctx context.Context, changedKeys []string) error {
	var err error
	if changedKeys == nil {
		_, err = a.All(ctx)
	} else {
		_, err = a.Keys(ctx, changedKeys)
	}
	return err
}

func (a *Applier) log() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

// Keys applies the changed keys strictly: any render error aborts before a
// service is restarted.
func (a *Applier) Keys(ctx context.Context, keys []string) (Result, error) {
	var res Result
	if len(keys) == 0 {
		return res, nil
	}
	affected, err := a.Source.AffectedServices(ctx, keys)
	if err != nil {
		return res, fmt.Errorf("look up affected services: %w", err)
	}
	changed := map[string][]string{} // service -> keys
	for _, k := range sortedKeys(affected) {
		for _, svc := range affected[k] {
			changed[svc] = append(changed[svc], k)
		}
	}
	if len(changed) == 0 {
		a.log().Info("no services affected", "keys", keys)
		return res, nil
	}
	svcNames := sortedKeys(changed)
	services, err := a.Source.Services(ctx, svcNames)
	if err != nil {
		return res, fmt.Errorf("read services %v: %w", svcNames, err)
	}
	written, failed, err := a.render(ctx, services, svcNames, true)
	res.Written, res.Failed = written, failed
	if err != nil {
		return res, err
	}
	if err := a.reloadIfUnits(ctx, written); err != nil {
		return res, err
	}
	for _, name := range svcNames {
		if err := a.Restarter.Restart(ctx, name, services[name], changed[name]); err != nil {
			return res, err
		}
		res.Restarted = append(res.Restarted, name)
	}
	return res, nil
}

// All renders every configuration file non-strictly (failures are logged
// and reported in Result.Failed), reloads systemd if a file under
// /etc/systemd/ was written, and restarts every service, as
// settings-applier does at boot. The error is nil unless the model could
// not be read or a restart failed.
func (a *Applier) All(ctx context.Context) (Result, error) {
	var res Result
	services, err := a.Source.Services(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("read services: %w", err)
	}
	svcNames := sortedKeys(services)
	written, failed, err := a.render(ctx, services, svcNames, false)
	res.Written, res.Failed = written, failed
	if err != nil {
		return res, err
	}
	// Unlike upstream, also at boot: a unit drop-in rendered now (kubelet's
	// command line) must count when its unit starts after this.
	if err := a.reloadIfUnits(ctx, written); err != nil {
		return res, err
	}
	var errs []error
	for _, name := range svcNames {
		if err := a.Restarter.Restart(ctx, name, services[name], nil); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Restarted = append(res.Restarted, name)
	}
	return res, errors.Join(errs...)
}

// render renders the configuration files of the named services.
func (a *Applier) render(ctx context.Context, services map[string]settings.Service, svcNames []string, strict bool) (written, failed []string, err error) {
	fileSet := map[string]bool{}
	for _, n := range svcNames {
		svc, ok := services[n]
		if !ok {
			return nil, nil, fmt.Errorf("service %q is not defined", n)
		}
		for _, f := range svc.ConfigurationFiles {
			fileSet[f] = true
		}
	}
	if len(fileSet) == 0 {
		return nil, nil, nil
	}
	fileNames := sortedKeys(fileSet)
	files, err := a.Source.ConfigurationFiles(ctx, fileNames)
	if err != nil {
		return nil, nil, fmt.Errorf("read configuration files %v: %w", fileNames, err)
	}
	model, err := a.Source.Model(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read settings: %w", err)
	}
	type out struct {
		path string
		data []byte
		mode os.FileMode
	}
	var outs []out
	var errs []error
	for _, name := range fileNames {
		cf, ok := files[name]
		if !ok {
			errs = append(errs, fmt.Errorf("configuration file %q is not defined", name))
			continue
		}
		data, mode, err := a.renderFile(name, cf, model)
		if err != nil {
			if !strict {
				a.log().Warn("skip configuration file", "name", name, "path", cf.Path, "error", err)
				failed = append(failed, cf.Path)
				continue
			}
			errs = append(errs, err)
			continue
		}
		outs = append(outs, out{cf.Path, data, mode})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, failed, err // strict: nothing written
	}
	for _, o := range outs {
		if err := writeAtomic(a.path(o.path), o.data, o.mode); err != nil {
			return written, failed, fmt.Errorf("write configuration file: %w", err)
		}
		a.log().Info("wrote configuration file", "path", o.path)
		written = append(written, o.path)
	}
	sort.Strings(written)
	return written, failed, nil
}

func (a *Applier) renderFile(name string, cf settings.ConfigurationFile, model map[string]any) ([]byte, os.FileMode, error) {
	mode, err := parseMode(cf.Mode)
	if err != nil {
		return nil, 0, fmt.Errorf("configuration file %s: %w", name, err)
	}
	src, err := os.ReadFile(a.path(cf.TemplatePath))
	if err != nil {
		return nil, 0, fmt.Errorf("configuration file %s: read template: %w", name, err)
	}
	t, err := ParseTemplate(cf.TemplatePath, src)
	if err != nil {
		return nil, 0, fmt.Errorf("configuration file %s: %w", name, err)
	}
	data, err := t.Execute(model)
	if err != nil {
		return nil, 0, fmt.Errorf("configuration file %s: %w", name, err)
	}
	return data, mode, nil
}

func (a *Applier) path(p string) string {
	if a.Root == "" {
		return p
	}
	return filepath.Join(a.Root, p)
}

// reloadIfUnits runs a daemon-reload when a unit file was written.
func (a *Applier) reloadIfUnits(ctx context.Context, written []string) error {
	for _, p := range written {
		if strings.HasPrefix(p, "/etc/systemd/") {
			if err := a.Restarter.DaemonReload(ctx); err != nil {
				return fmt.Errorf("reload systemd after writing %s: %w", p, err)
			}
			return nil
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
