package initramfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// moduleResult summarises a module loading pass.
type moduleResult struct {
	loaded  int
	skipped []string // "name: reason"
}

// readModuleList parses /etc/modules.order: one absolute path a line;
// blank lines and lines starting with # are ignored.
func readModuleList(data string) ([]string, error) {
	var out []string
	for i, l := range strings.Split(data, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if !strings.HasPrefix(l, "/") {
			return nil, fmt.Errorf("line %d: %q: expected an absolute path", i+1, l)
		}
		out = append(out, l)
	}
	return out, nil
}

// loadModules loads every module listed in the file at listPath with
// finit_module(2), in order. EEXIST (already loaded or built in) and ENODEV
// (no matching hardware, e.g. crc32c-intel on a CPU without SSE4.2) are
// reported as skipped; any other failure is fatal.
func loadModules(ctx context.Context, listPath string) (moduleResult, error) {
	var res moduleResult
	data, err := os.ReadFile(listPath)
	if errors.Is(err, os.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("read module list: %w", err)
	}
	paths, err := readModuleList(string(data))
	if err != nil {
		return res, fmt.Errorf("parse module list %q: %w", listPath, err)
	}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("load modules: %w", err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".ko")
		err := loadModule(p)
		switch {
		case err == nil:
			res.loaded++
		case errors.Is(err, unix.EEXIST):
			res.skipped = append(res.skipped, name+": already loaded")
		case errors.Is(err, unix.ENODEV):
			res.skipped = append(res.skipped, name+": no such device")
		default:
			return res, err
		}
	}
	return res, nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open module: %w", err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil {
		return fmt.Errorf("load module %q: %w", path, err)
	}
	return nil
}
