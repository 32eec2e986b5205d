package render

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/petrel-os/petrel/sources/apiclient"
)

// SysctlKey is the setting of kernel parameters: key → value, both
// strings, as sysctl(8) names them.
const SysctlKey = "settings.kernel.sysctl"

// DefaultProc is where procfs is mounted.
const DefaultProc = "/proc"

// errSysctlKey is matched by the error of a key SetSysctls refuses to
// turn into a path.
var errSysctlKey = errors.New("not a sysctl key")

// sysctlPath turns a sysctl key into its path below /proc/sys, as
// sysctl.d(5) does: "vm.max_map_count" is vm/max_map_count; a key with a
// '/' is already a path, and its dots stay ("net/ipv4/conf/eth0.100/rp_filter").
// A key that would leave /proc/sys, names nothing (empty segments, "." or
// ".."), or holds a glob is refused: the settings model checks keys when
// they are set, this check guards what is written with root's rights.
func sysctlPath(key string) (string, error) {
	p := key
	if !strings.Contains(key, "/") {
		p = strings.ReplaceAll(key, ".", "/")
	}
	if key == "" || strings.ContainsAny(key, "*?[]\\\x00") {
		return "", fmt.Errorf("%w: %q", errSysctlKey, key)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("%w: %q (empty, . or .. in %q)", errSysctlKey, key, p)
		}
	}
	return p, nil
}

// SetSysctls writes each value of sysctls (the value of SysctlKey) to
// <proc>/sys/<key's path>, in key order, as upstream's corndog does at
// boot and when the setting changes. The kernel's value is read back and
// printed to out as "petrel: sysctl KEY = VALUE" (blanks between fields
// made single spaces). A key the kernel does not have, a value it
// refuses, a key that is not a sysctl's or a value that is not a string
// is logged as a warning naming the key and the error, and the others are
// still applied; their keys are returned, sorted.
func SetSysctls(proc string, sysctls map[string]any, out io.Writer, log *slog.Logger) (failed []string) {
	for _, key := range sortedNames(sysctls) {
		if err := setSysctl(proc, key, sysctls[key], out, log); err != nil {
			log.Warn("cannot set sysctl; the others are still applied", "key", key, "error", err)
			failed = append(failed, key)
		}
	}
	return failed
}

func setSysctl(proc, key string, v any, out io.Writer, log *slog.Logger) error {
	value, ok := v.(string)
	if !ok {
		return fmt.Errorf("set sysctl %s: value %v is a %T, not a string", key, v, v)
	}
	rel, err := sysctlPath(key)
	if err != nil {
		return fmt.Errorf("set sysctl: %w", err)
	}
	path := filepath.Join(proc, "sys", filepath.FromSlash(rel))
	// No O_CREATE: a key the kernel lacks is an error, never a new file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("set sysctl %s: %w", key, err)
	}
	_, err = f.Write([]byte(value))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("set sysctl %s to %q: %w", key, value, err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		// Write-only parameters (vm.drop_caches) cannot be read back.
		log.Info("sysctl written; cannot read it back", "key", key, "error", err)
		fmt.Fprintf(out, "petrel: sysctl %s written\n", key)
		return nil
	}
	fmt.Fprintf(out, "petrel: sysctl %s = %s\n", key, strings.Join(strings.Fields(string(got)), " "))
	return nil
}

// sysctlFromAPI reads SysctlKey through the API and applies it with
// SetSysctls. Only a failure to read the setting is an error: what the
// kernel refuses is logged.
func sysctlFromAPI(ctx context.Context, client *apiclient.Client, proc string, out io.Writer, log *slog.Logger) error {
	got, err := client.Get(ctx, SysctlKey)
	if err != nil {
		return fmt.Errorf("read %s: %w", SysctlKey, err)
	}
	sysctls, _ := lookup(map[string]any{"settings": got}, SysctlKey).(map[string]any)
	if len(sysctls) == 0 {
		log.Info("no sysctl set", "key", SysctlKey)
		return nil
	}
	if failed := SetSysctls(proc, sysctls, out, log); len(failed) > 0 {
		log.Warn("some sysctls were not set", "keys", failed)
	}
	return nil
}
