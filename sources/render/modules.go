package render

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/settings"
)

// ModulesKey is the setting of kernel modules: name → {allowed, autoload}.
const ModulesKey = "settings.kernel.modules"

// DefaultModprobe is the program that loads a module with its
// dependencies, honouring /etc/modprobe.d.
const DefaultModprobe = "/usr/sbin/modprobe"

// DefaultSys is where sysfs is mounted: /sys/module/NAME exists while a
// module is loaded (or built in).
const DefaultSys = "/sys"

// Loader loads kernel modules; tests fake it.
type Loader struct {
	// Modprobe is run as "Modprobe -- NAME"; DefaultModprobe if "".
	Modprobe string
	// Sys is sysfs's mount point; DefaultSys if "".
	Sys string
}

// autoloadModules returns the modules of modules (the value of
// ModulesKey) to load: autoload = true and not allowed = false, sorted.
// The templates modprobe-conf and modules-load select them the same way.
func autoloadModules(modules map[string]any) []string {
	var names []string
	for _, name := range sortedNames(modules) {
		m, _ := modules[name].(map[string]any)
		if autoload, _ := m["autoload"].(bool); !autoload {
			continue
		}
		if allowed, ok := m["allowed"].(bool); ok && !allowed {
			continue
		}
		names = append(names, name)
	}
	return names
}

// LoadModules loads the modules modules marks autoload = true and does
// not forbid (allowed = false), as systemd-modules-load does with the
// modules-load.d file the settings render, but also when the setting
// changes on a running host. Each module found loaded afterwards in
// sysfs is printed to out as "petrel: kernel module NAME loaded"; a
// module modprobe cannot load, or that is not there afterwards, is logged
// as a warning naming the module and the error, and the others are still
// loaded. The names that failed are returned. Modules are never unloaded:
// a module no longer wanted stays until the next boot.
func (l Loader) LoadModules(ctx context.Context, modules map[string]any, out io.Writer, log *slog.Logger) (failed []string) {
	for _, name := range autoloadModules(modules) {
		if err := l.load(ctx, name); err != nil {
			log.Warn("cannot load kernel module; the others are still loaded", "module", name, "error", err)
			failed = append(failed, name)
			continue
		}
		fmt.Fprintf(out, "petrel: kernel module %s loaded\n", name)
	}
	return failed
}

func (l Loader) load(ctx context.Context, name string) error {
	// The settings model checked the name when it was set; checked again
	// before it reaches modprobe's command line.
	if !settings.IsModuleName(name) {
		return fmt.Errorf("load kernel module %q: not a module name", name)
	}
	modprobe, sys := l.Modprobe, l.Sys
	if modprobe == "" {
		modprobe = DefaultModprobe
	}
	if sys == "" {
		sys = DefaultSys
	}
	if out, err := exec.CommandContext(ctx, modprobe, "--", name).CombinedOutput(); err != nil {
		return fmt.Errorf("load kernel module %s: %s: %w: %s", name, modprobe, err, strings.TrimSpace(string(out)))
	}
	// sysfs names modules with '_' where modprobe accepts '-' too.
	dir := filepath.Join(sys, "module", strings.ReplaceAll(name, "-", "_"))
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("load kernel module %s: modprobe succeeded but the kernel does not list it: %w", name, err)
	}
	return nil
}

// modulesFromAPI reads ModulesKey through the API and loads what it
// asks to autoload. Only a failure to read the setting is an error.
func (l Loader) modulesFromAPI(ctx context.Context, client *apiclient.Client, out io.Writer, log *slog.Logger) error {
	got, err := client.Get(ctx, ModulesKey)
	if err != nil {
		return fmt.Errorf("read %s: %w", ModulesKey, err)
	}
	modules, _ := lookup(map[string]any{"settings": got}, ModulesKey).(map[string]any)
	if len(autoloadModules(modules)) == 0 {
		log.Info("no kernel module to load", "key", ModulesKey)
		return nil
	}
	if failed := l.LoadModules(ctx, modules, out, log); len(failed) > 0 {
		log.Warn("some kernel modules were not loaded", "modules", failed)
	}
	return nil
}
