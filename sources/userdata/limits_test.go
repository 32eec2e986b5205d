package userdata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/apiserver"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/settings"
)

// TestLimitsAgreeWithAPI: user data whose settings fit one API request is
// accepted by Parse and by the shipped API server; one byte or one setting
// more is refused by Parse with the limit named (and would be by the
// server).
func TestLimitsAgreeWithAPI(t *testing.T) {
	dir := t.TempDir()
	cur, err := datastore.Create(filepath.Join(dir, "ds"), "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := datastore.Open(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	opts := apiserver.DefaultOptions()
	opts.Applier, opts.SocketGID = "", 0
	opts.UpdateStatus, opts.UpdateLock = filepath.Join(dir, "update-status.json"), filepath.Join(dir, "update.lock")
	cfg, err := opts.Config(store, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "api.sock")
	ln, err := apiserver.Listen(sock, -1, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- apiserver.New(cfg).Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	client := apiclient.New(sock)
	defer client.Close()

	motd := func(n int) string { return fmt.Sprintf("[settings]\nmotd = %q\n", strings.Repeat("m", n)) }
	sysctl := func(n int) string {
		var b strings.Builder
		b.WriteString("[settings.kernel.sysctl]\n")
		for i := range n {
			fmt.Fprintf(&b, "\"k.%d\" = \"1\"\n", i)
		}
		return b.String()
	}
	overhead := len(`{"motd":""}`)
	// The server's side of the body limit: one byte more is a 413.
	var se *apiclient.StatusError
	if err := client.Set(ctx, "ud", map[string]any{"motd": strings.Repeat("m", api.MaxBodyBytes-overhead+1)}); !errors.As(err, &se) || se.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("API took a body one byte over its limit: %v", err)
	}
	for _, tc := range []struct {
		name, doc string
		err       string
		noSend    bool // 10,000 datastore writes take half a minute; settings' DecodeJSON tests take MaxKeys
	}{
		{"body at the limit", motd(api.MaxBodyBytes - overhead), "", false},
		{"body over the limit", motd(api.MaxBodyBytes - overhead + 1), "user data from file /x: settings too large for one API request: its settings are 1048577 bytes as JSON, more than the API's limit of 1048576 bytes", false},
		{"settings at the limit", sysctl(settings.MaxKeys), "", true},
		{"settings over the limit", sysctl(settings.MaxKeys + 1), "user data from file /x: settings too large for one API request: it sets 10001 settings, more than the API's limit of 10000", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("file /x", []byte(tc.doc))
			if tc.err != "" {
				if !errors.Is(err, ErrTooLarge) || err.Error() != tc.err {
					t.Fatalf("Parse = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || tc.noSend {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err := client.Set(ctx, "ud", s); err != nil {
				t.Fatalf("the API refused what Parse accepted: %v", err)
			}
			if _, _, err := client.Raw(ctx, http.MethodDelete, "/tx?tx=ud", nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}
