package initramfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// moduleResult summarises a module loading pass.
type moduleResult struct {
	loaded  int
	skipped []string // "name: reason"
}

// moduleEntry is one line of /etc/modules.order: a module and the
// modules (indexes of earlier lines) it must be loaded after.
type moduleEntry struct {
	path  string
	after []int
}

// readModuleList parses /etc/modules.order: one absolute module path a
// line, optionally followed by ": " and the paths of earlier lines that
// must be loaded before it (tools/initrd writes them from the modules'
// dependencies); blank lines and lines starting with # are ignored.
func readModuleList(data string) ([]moduleEntry, error) {
	var out []moduleEntry
	index := map[string]int{}
	for i, l := range strings.Split(data, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		p, deps, _ := strings.Cut(l, ":")
		e := moduleEntry{path: strings.TrimSpace(p)}
		if !strings.HasPrefix(e.path, "/") {
			return nil, fmt.Errorf("line %d: %q: expected an absolute path", i+1, e.path)
		}
		if _, dup := index[e.path]; dup {
			return nil, fmt.Errorf("line %d: %q is listed twice", i+1, e.path)
		}
		for _, d := range strings.Fields(deps) {
			j, ok := index[d]
			if !ok {
				return nil, fmt.Errorf("line %d: %q must be loaded after %q, which no earlier line lists", i+1, e.path, d)
			}
			e.after = append(e.after, j)
		}
		index[e.path] = len(out)
		out = append(out, e)
	}
	return out, nil
}

// loadModules loads every module listed in the file at listPath with
// finit_module(2). EEXIST (already loaded or built in) and ENODEV (no
// matching hardware, e.g. crc32c-intel on a CPU without SSE4.2) are
// reported as skipped; any other failure is fatal.
func loadModules(ctx context.Context, listPath string) (moduleResult, error) {
	data, err := os.ReadFile(listPath)
	if errors.Is(err, os.ErrNotExist) {
		return moduleResult{}, nil
	}
	if err != nil {
		return moduleResult{}, fmt.Errorf("read module list: %w", err)
	}
	mods, err := readModuleList(string(data))
	if err != nil {
		return moduleResult{}, fmt.Errorf("parse module list %q: %w", listPath, err)
	}
	return loadAll(ctx, mods, runtime.NumCPU(), loadModule)
}

// loadAll loads mods with load, up to jobs at once: each one once those
// it must follow are done (loaded or skipped), so that modules without
// dependencies between them load in parallel (under emulation each
// takes tens of milliseconds: signature check, relocation, probing).
// After a fatal failure no further module is started; the failure of
// the earliest module in the list is returned. skipped keeps the list's
// order.
func loadAll(ctx context.Context, mods []moduleEntry, jobs int, load func(path string) error) (moduleResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs = max(jobs, 1)
	sem := make(chan struct{}, jobs)
	done := make([]chan struct{}, len(mods))
	for i := range done {
		done[i] = make(chan struct{})
	}
	errs := make([]error, len(mods))
	var wg sync.WaitGroup
	for i, m := range mods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			for _, j := range m.after {
				select {
				case <-done[j]:
				case <-ctx.Done():
				}
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			if err := ctx.Err(); err != nil {
				<-sem
				errs[i] = err
				return
			}
			errs[i] = load(m.path)
			<-sem
			if errs[i] != nil && !skippable(errs[i]) {
				cancel()
			}
		}()
	}
	wg.Wait()
	var res moduleResult
	var cancelled error
	for i, m := range mods {
		name := strings.TrimSuffix(filepath.Base(m.path), ".ko")
		switch err := errs[i]; {
		case err == nil:
			res.loaded++
		case errors.Is(err, unix.EEXIST):
			res.skipped = append(res.skipped, name+": already loaded")
		case errors.Is(err, unix.ENODEV):
			res.skipped = append(res.skipped, name+": no such device")
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			if cancelled == nil {
				cancelled = err
			}
		default:
			return res, err
		}
	}
	if cancelled != nil {
		return res, fmt.Errorf("load modules: %w", cancelled)
	}
	return res, nil
}

// skippable says whether a module's failure leaves the boot going.
func skippable(err error) bool {
	return errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENODEV)
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
