package userdata

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type recordingAPI struct{ patches []any }

func (r *recordingAPI) Set(_ context.Context, tx string, s any) error {
	r.patches = append(r.patches, map[string]any{"tx": tx, "settings": s})
	return nil
}

func TestRunOrderAndMarker(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "a.toml")
	second := filepath.Join(dir, "b.json")
	os.WriteFile(first, []byte("[settings]\nmotd = \"a\"\n"), 0o644)
	os.WriteFile(second, []byte(`{"settings":{"motd":"b"}}`), 0o644)
	api := &recordingAPI{}
	cfg := Config{
		Providers:   []Provider{FileProvider{first}, FileProvider{filepath.Join(dir, "absent")}, FileProvider{second}},
		API:         api,
		Transaction: "launch",
		Marker:      filepath.Join(dir, "state", "ran"),
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{
		map[string]any{"tx": "launch", "settings": map[string]any{"motd": "a"}},
		map[string]any{"tx": "launch", "settings": map[string]any{"motd": "b"}},
	}
	if !reflect.DeepEqual(api.patches, want) || len(res.Applied) != 2 {
		t.Fatalf("patches = %v, applied = %v", api.patches, res.Applied)
	}
	res, err = Run(context.Background(), cfg)
	if err != nil || !res.AlreadyRan || len(api.patches) != 2 {
		t.Fatalf("second run: %+v, %v, %d patches", res, err, len(api.patches))
	}
}

func TestRunBadUserDataLeavesNoMarker(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "u.toml")
	os.WriteFile(f, []byte("[settings.network]\nhostname = \"no_underscores\"\n"), 0o644)
	marker := filepath.Join(dir, "ran")
	api := &recordingAPI{}
	_, err := Run(context.Background(), Config{Providers: []Provider{FileProvider{f}}, API: api, Transaction: "t", Marker: marker})
	if err == nil || !strings.Contains(err.Error(), "user data from file "+f+": settings.network.hostname") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) || len(api.patches) != 0 {
		t.Fatal("marker written or settings patched after bad user data")
	}
}
