package settings_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/apiserver"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/settings"
	"github.com/petrel-os/petrel/sources/testkit/apitest"
)

// TestCommitLogsKeysNotValues: settings-committer's line about the pending
// settings reaches the console; it names the keys and no value, so a
// registry password in user data is not shown.
func TestCommitLogsKeysNotValues(t *testing.T) {
	sock := apitest.Serve(t, "1.0.0", func(_ string, store *datastore.Store) apiserver.Config {
		return apiserver.Config{Store: store, Validator: settings.Validator{}, SocketGID: -1}
	})
	c := apiclient.New(sock)
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "launch", map[string]any{"motd": "hello", "container-registry": map[string]any{
		"credentials": []any{map[string]any{"registry": "r.example", "username": "u", "password": "s3cret"}}}}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	keys, err := settings.Commit(ctx, c, "launch", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil || len(keys) != 2 {
		t.Fatalf("Commit = %v, %v", keys, err)
	}
	want := `keys="settings.container-registry.credentials settings.motd"`
	if !strings.Contains(logs.String(), want) || strings.Contains(logs.String(), "s3cret") || strings.Contains(logs.String(), "hello") {
		t.Errorf("log:\n%s\nwant the keys (%s) and no values", logs.String(), want)
	}
}
