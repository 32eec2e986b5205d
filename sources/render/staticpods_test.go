package render

import (
	"bytes"
	"encoding/base64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteStaticPods(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	pod := func(enabled bool, manifest string) map[string]any {
		return map[string]any{"enabled": enabled, "manifest": enc(manifest)}
	}
	// A file kubelet's directory may hold that is not a pod of the
	// settings: left alone.
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name  string
		pods  map[string]any
		out   string
		files map[string]string
		err   string
	}{
		{"two pods", map[string]any{"a": pod(true, "A1"), "b": pod(true, "B1"), "off": pod(false, "X")},
			"petrel: static pod a written\npetrel: static pod b written\n", map[string]string{"a.yaml": "A1", "b.yaml": "B1"}, ""},
		{"unchanged", map[string]any{"a": pod(true, "A1"), "b": pod(true, "B1")}, "", map[string]string{"a.yaml": "A1", "b.yaml": "B1"}, ""},
		{"change and disable", map[string]any{"a": pod(true, "A2"), "b": pod(false, "B1")},
			"petrel: static pod b removed\npetrel: static pod a written\n", map[string]string{"a.yaml": "A2"}, ""},
		{"bad manifest", map[string]any{"a": pod(true, "A2"), "c": map[string]any{"enabled": true, "manifest": "!!"}, "d": pod(true, "D1")},
			"petrel: static pod d written\n", map[string]string{"a.yaml": "A2", "d.yaml": "D1"}, "static pod c: decode manifest: illegal base64 data at input byte 0"},
		{"none", nil, "petrel: static pod a removed\npetrel: static pod d removed\n", map[string]string{}, ""},
	} {
		t.Run(step.name, func(t *testing.T) {
			var out bytes.Buffer
			err := WriteStaticPods(dir, step.pods, &out, log)
			if step.err == "" && err != nil || step.err != "" && (err == nil || err.Error() != step.err) {
				t.Fatalf("WriteStaticPods: %v, want error %q", err, step.err)
			}
			if out.String() != step.out {
				t.Errorf("output %q, want %q", out.String(), step.out)
			}
			entries, _ := os.ReadDir(dir)
			got := map[string]string{}
			for _, e := range entries {
				if e.Name() == "README" {
					continue
				}
				data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
				got[e.Name()] = string(data)
			}
			if len(got) != len(step.files) {
				t.Errorf("files %v, want %v", got, step.files)
			}
			for n, want := range step.files {
				if got[n] != want {
					t.Errorf("%s = %q, want %q", n, got[n], want)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
				t.Errorf("README removed: %v", err)
			}
			for n := range got {
				if strings.HasPrefix(n, ".") {
					t.Errorf("temporary file %s left", n)
				}
			}
		})
	}
}
