package render

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/petrel-os/petrel/sources/apiclient"
)

// StaticPodsKey is the setting of kubelet's static pods: name →
// {enabled, manifest (base64)}.
const StaticPodsKey = "settings.kubernetes.static-pods"

// DefaultStaticPodDir is kubelet's staticPodPath on a Petrel host.
const DefaultStaticPodDir = "/etc/kubernetes/static-pods"

// staticPodSuffix ends the name of every manifest file WriteStaticPods
// owns; kubelet reads every file of the directory whose name does not
// start with ".", and outfile's temporary files do.
const staticPodSuffix = ".yaml"

// WriteStaticPods makes dir hold exactly the enabled pods of pods (the
// value of StaticPodsKey): <name>.yaml with the decoded manifest, written
// atomically when it changed; the files of pods that are disabled or gone
// are removed. kubelet watches the directory and starts, restarts or
// stops the pods. Each change is printed to out as "petrel: static pod
// NAME written|removed". A pod whose manifest cannot be decoded is
// skipped and reported; the others are still written.
func WriteStaticPods(dir string, pods map[string]any, out io.Writer, log *slog.Logger) error {
	want := map[string][]byte{}
	var errs []error
	for _, name := range sortedNames(pods) {
		p, _ := pods[name].(map[string]any)
		enabled, _ := p["enabled"].(bool)
		manifest, _ := p["manifest"].(string)
		if !enabled || manifest == "" {
			continue
		}
		data, err := base64.StdEncoding.DecodeString(manifest)
		if err != nil {
			errs = append(errs, fmt.Errorf("static pod %s: decode manifest: %w", name, err))
			continue
		}
		if strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
			errs = append(errs, fmt.Errorf("static pod %q: not a file name", name))
			continue
		}
		want[name+staticPodSuffix] = data
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create static pod directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list static pods: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if _, keep := want[n]; keep || !strings.HasSuffix(n, staticPodSuffix) || strings.HasPrefix(n, ".") {
			continue
		}
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			errs = append(errs, fmt.Errorf("remove static pod %s: %w", n, err))
			continue
		}
		fmt.Fprintf(out, "petrel: static pod %s removed\n", strings.TrimSuffix(n, staticPodSuffix))
	}
	for _, n := range sortedNames(want) {
		path := filepath.Join(dir, n)
		if old, err := os.ReadFile(path); err == nil && string(old) == string(want[n]) {
			log.Debug("static pod unchanged", "file", path)
			continue
		}
		if err := writeAtomic(path, want[n], 0o600); err != nil {
			errs = append(errs, fmt.Errorf("write static pod %s: %w", n, err))
			continue
		}
		fmt.Fprintf(out, "petrel: static pod %s written\n", strings.TrimSuffix(n, staticPodSuffix))
	}
	return errors.Join(errs...)
}

// staticPodsFromAPI reads StaticPodsKey and writes dir.
func staticPodsFromAPI(ctx context.Context, client *apiclient.Client, dir string, out io.Writer, log *slog.Logger) error {
	got, err := client.Get(ctx, StaticPodsKey)
	if err != nil {
		return fmt.Errorf("read %s: %w", StaticPodsKey, err)
	}
	pods, _ := lookup(map[string]any{"settings": got}, StaticPodsKey).(map[string]any)
	return WriteStaticPods(dir, pods, out, log)
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
