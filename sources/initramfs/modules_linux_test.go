package initramfs

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestReadModuleList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     []moduleEntry
		err      string
	}{
		{"paths only", "# comment\n/m/a.ko\n\n/m/b.ko\n", []moduleEntry{{path: "/m/a.ko"}, {path: "/m/b.ko"}}, ""},
		{"dependencies", "/m/a.ko\n/m/b.ko\n/m/c.ko: /m/a.ko /m/b.ko\n/m/d.ko: /m/c.ko\n",
			[]moduleEntry{{path: "/m/a.ko"}, {path: "/m/b.ko"}, {path: "/m/c.ko", after: []int{0, 1}}, {path: "/m/d.ko", after: []int{2}}}, ""},
		{"relative path", "a.ko\n", nil, `line 1: "a.ko": expected an absolute path`},
		{"later dependency", "/m/a.ko: /m/b.ko\n/m/b.ko\n", nil, `line 1: "/m/a.ko" must be loaded after "/m/b.ko", which no earlier line lists`},
		{"listed twice", "/m/a.ko\n/m/a.ko\n", nil, `line 2: "/m/a.ko" is listed twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readModuleList(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("readModuleList = %v, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("readModuleList = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzReadModuleList(f *testing.F) {
	f.Add("/m/a.ko\n/m/b.ko: /m/a.ko\n")
	f.Add("# c\n\n/m/a.ko:\n")
	f.Fuzz(func(t *testing.T, in string) {
		mods, err := readModuleList(in)
		if err != nil {
			return
		}
		for i, m := range mods {
			if !strings.HasPrefix(m.path, "/") {
				t.Fatalf("entry %d: relative path %q", i, m.path)
			}
			for _, j := range m.after {
				if j >= i {
					t.Fatalf("entry %d follows a later entry %d", i, j)
				}
			}
		}
	})
}

// TestLoadAll loads a dependency graph with a loader that checks, as the
// kernel would, that each module's dependencies are in before it; with
// two jobs, independent modules overlap.
func TestLoadAll(t *testing.T) {
	t.Parallel()
	// a, b independent; c after both; d after c; e independent; f (no
	// such device) and g (already loaded) are skipped and their
	// dependents still load.
	mods := []moduleEntry{{path: "/m/a.ko"}, {path: "/m/b.ko"}, {path: "/m/c.ko", after: []int{0, 1}}, {path: "/m/d.ko", after: []int{2}},
		{path: "/m/e.ko"}, {path: "/m/f.ko"}, {path: "/m/g.ko"}, {path: "/m/h.ko", after: []int{5, 6}}}
	errOf := map[string]error{"/m/f.ko": unix.ENODEV, "/m/g.ko": unix.EEXIST}
	var mu sync.Mutex
	loaded := map[string]bool{}
	running, most := 0, 0
	var problems []string
	load := func(p string) error {
		mu.Lock()
		for _, m := range mods {
			if m.path != p {
				continue
			}
			for _, j := range m.after {
				if !loaded[mods[j].path] {
					problems = append(problems, fmt.Sprintf("%s started before %s was done", p, mods[j].path))
				}
			}
		}
		running++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running--
		loaded[p] = true
		mu.Unlock()
		return errOf[p]
	}
	res, err := loadAll(context.Background(), mods, 2, load)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Errorf("order: %v", problems)
	}
	if want := []string{"f: no such device", "g: already loaded"}; res.loaded != 6 || !reflect.DeepEqual(res.skipped, want) {
		t.Errorf("result = %+v, want 6 loaded and skipped %v", res, want)
	}
	if most != 2 {
		t.Errorf("at most %d modules loaded at once, want 2 (the jobs)", most)
	}
}

// TestLoadAllFailure: a module that fails stops the modules not yet
// started, and its error is returned, not the cancellations it caused.
func TestLoadAllFailure(t *testing.T) {
	t.Parallel()
	mods := []moduleEntry{{path: "/m/a.ko"}, {path: "/m/bad.ko", after: []int{0}}, {path: "/m/c.ko", after: []int{1}}, {path: "/m/d.ko", after: []int{2}}}
	var mu sync.Mutex
	var started []string
	bad := fmt.Errorf("load module %q: %w", "/m/bad.ko", unix.ENOEXEC)
	res, err := loadAll(context.Background(), mods, 2, func(p string) error {
		mu.Lock()
		started = append(started, p)
		mu.Unlock()
		if p == "/m/bad.ko" {
			return bad
		}
		return nil
	})
	if !errors.Is(err, unix.ENOEXEC) || !strings.Contains(err.Error(), "/m/bad.ko") {
		t.Fatalf("loadAll = %+v, %v; want bad.ko's error", res, err)
	}
	if !reflect.DeepEqual(started, []string{"/m/a.ko", "/m/bad.ko"}) {
		t.Errorf("started %v; want nothing after the failure", started)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := loadAll(ctx, mods, 2, func(string) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("loadAll with a cancelled context = %v", err)
	}
}
