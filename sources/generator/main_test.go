package generator

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/apiserver"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/settings"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/sources/testkit/apitest"
)

func TestMainFlags(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "none.sock")
	testkit.CheckMain(t, testkit.NoStdin(Main), []testkit.MainCase{
		{Name: "help", Args: []string{"--help"}, Code: 0, Out: "--timeout"},
		{Name: "seed help", Args: []string{"generate-seed", "-h"}, Code: 0, Out: "sundog generate-seed"},
		{Name: "unknown flag", Args: []string{"--bogus"}, Code: 2, Err: "sundog: unknown flag: --bogus"},
		{Name: "single-dash long flag", Args: []string{"-socket-path", missing}, Code: 2, Err: "unknown shorthand flag"},
		{Name: "argument", Args: []string{"extra"}, Code: 2, Err: `unknown command "extra"`},
		{Name: "seed argument", Args: []string{"generate-seed", "x"}, Code: 2, Err: "Run 'sundog generate-seed --help'"},
		{Name: "bad timeout", Args: []string{"--timeout", "soon"}, Code: 2, Err: `invalid argument "soon"`},
		{Name: "bad log level", Args: []string{"--log-level", "loud"}, Code: 2, Err: `bad --log-level "loud"`},
		{Name: "no API", Args: []string{"--socket-path", missing}, Code: 1, Err: "none.sock"},
	})
}

func TestGenerateSeed(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"generate-seed"}, &out, &errb); code != 0 {
		t.Fatalf("Main(generate-seed) = %d, stderr %q", code, errb.String())
	}
	if n, err := strconv.Atoi(strings.TrimSpace(out.String())); err != nil || n < 0 || n > 2047 {
		t.Errorf("Main(generate-seed) printed %q, want a number 0..2047", out.String())
	}
}

// TestMainCommit: with --commit, sundog commits the transaction first, in
// its process (what the shipped unit's settings-committer did), and then
// stages what its generators make in --transaction; without it, pending
// settings stay pending.
func TestMainCommit(t *testing.T) {
	t.Parallel()
	sock := apitest.Serve(t, "1.0.0", func(_ string, store *datastore.Store) apiserver.Config {
		return apiserver.Config{Store: store, Validator: settings.Validator{}, SocketGID: -1}
	})
	ctx := context.Background()
	c := apiclient.New(sock)
	defer c.Close()
	for _, tc := range []struct {
		name, motd string
		args       []string
		wantOut    string
		wantLive   bool
	}{
		{name: "without --commit", motd: "staged", args: nil, wantOut: "generated 0 settings", wantLive: false},
		{name: "with --commit", motd: "committed", args: []string{"--commit", api.LaunchTransaction}, wantOut: "committed 1 settings from " + api.LaunchTransaction + "\ngenerated 0 settings", wantLive: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Set(ctx, api.LaunchTransaction, map[string]any{"motd": tc.motd}); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if code := Main(ctx, append([]string{"--socket-path", sock}, tc.args...), &out, &errb); code != 0 {
				t.Fatalf("Main = %d, stderr:\n%s", code, errb.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output %q, want %q", out.String(), tc.wantOut)
			}
			live, err := c.Get(ctx, "settings.motd")
			if err != nil {
				t.Fatal(err)
			}
			got, _ := live["motd"].(string)
			if (got == tc.motd) != tc.wantLive {
				t.Errorf("live settings.motd = %q after %v; want it %q: %v", got, tc.args, tc.motd, tc.wantLive)
			}
		})
	}
}
