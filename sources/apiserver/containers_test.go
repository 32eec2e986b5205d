package apiserver

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestContainerStatus serves host-ctr's status documents: none, two, and a
// corrupt one, which is a 500 without its path in the body.
func TestContainerStatus(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "status")
	h := startServerWith(t, 0o600, func(c *Config) { c.ContainerStatusDir = dir })
	get := func() (int, string) {
		code, body, err := h.client.Raw(context.Background(), http.MethodGet, "/host-containers/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		return code, string(body)
	}
	if code, body := get(); code != 200 || strings.TrimSpace(body) != "{}" {
		t.Errorf("no status directory: %d %q, want 200 {}", code, body)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{
		"admin.json":      `{"id":"admin","type":"host","state":"running","pid":42,"updated":"2026-01-01T00:00:00Z"}`,
		"boot.setup.json": `{"id":"boot.setup","type":"bootstrap","state":"failed","error":"pull x: not found","updated":"2026-01-01T00:00:00Z"}`,
		"admin.json.tmp":  `garbage`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, body := get()
	for _, want := range []string{`"admin":{"id":"admin","type":"host","state":"running","pid":42`, `"boot.setup":{"id":"boot.setup","type":"bootstrap","state":"failed","error":"pull x: not found"`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET /host-containers/status = %d %s, want it to hold %s", code, body, want)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := get(); code != 500 || strings.Contains(body, dir) {
		t.Errorf("a corrupt status document: %d %q, want a 500 that does not name the file", code, body)
	}
}
