package apiclient_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/apiserver"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/testkit/apitest"
)

type rebooter struct{ n int }

func (r *rebooter) Reboot(context.Context) error { r.n++; return nil }

func startServer(t *testing.T) (string, *rebooter) {
	t.Helper()
	rb := &rebooter{}
	sock := serve(t, func(_ string, store *datastore.Store) apiserver.Config {
		return apiserver.Config{Store: store, Rebooter: rb, SocketGID: -1,
			OS: api.OSRelease{PrettyName: "Petrel", VariantID: "metal-dev", VersionID: "1.0.0", BuildID: "b", Arch: "x86_64"}}
	})
	return sock, rb
}

// serve runs an API server until the test ends (apitest.Serve) with a
// datastore of version 1.0.0; it returns the socket.
func serve(t *testing.T, config func(sock string, store *datastore.Store) apiserver.Config) string {
	t.Helper()
	return apitest.Serve(t, "1.0.0", config)
}

func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := apiclient.Run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLI(t *testing.T) {
	sock, rb := startServer(t)
	dir := t.TempDir()
	userdata := filepath.Join(dir, "user-data.toml")
	if err := os.WriteFile(userdata, []byte("[settings]\nmotd = \"from toml\"\n[settings.kubernetes.node-labels]\n\"my.label\" = \"x\"\n[other]\nignored = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[settings]\nmotd = \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		out   string // substring of stdout
		err   string // substring of stderr
	}{
		{name: "set pairs", args: []string{"-s", sock, "set", "motd=hello", "settings.updates.seed=12", `kubernetes.node-labels."a.b"=c`}},
		{name: "get key", args: []string{"-s", sock, "get", "settings.motd"}, out: "{\n  \"settings\": {\n    \"motd\": \"hello\"\n  }\n}\n"},
		{name: "get typed", args: []string{"-s", sock, "get", "settings.updates"}, out: `"seed": 12`},
		{name: "get default", args: []string{"-s", sock, "get"}, out: `"variant_id": "metal-dev"`},
		{name: "get uri", args: []string{"-s", sock, "get", "/settings"}, out: `"a.b": "c"`},
		{name: "get mixed", args: []string{"-s", sock, "get", "/settings", "settings.motd"}, code: 2, err: "not both"},
		{name: "set json", args: []string{"-s", sock, "set", "--json", `{"settings":{"motd":"json"}}`}},
		{name: "get after json", args: []string{"-s", sock, "raw", "-u", "/settings?keys=settings.motd"}, out: `{"motd":"json"}`},
		{name: "set both forms", args: []string{"-s", sock, "set", "-j", `{}`, "a=b"}, code: 2, err: "exactly one form"},
		{name: "set no pair", args: []string{"-s", sock, "set", "motd"}, code: 2, err: "not KEY=VALUE"},
		{name: "set bad key", args: []string{"-s", sock, "set", "bad key=1"}, code: 1, err: "status 400"},
		{name: "apply file", args: []string{"-s", sock, "apply", "file://" + userdata}},
		{name: "get applied", args: []string{"-s", sock, "get", "settings.kubernetes"}, out: `"my.label": "x"`},
		{name: "apply stdin json", stdin: `{"settings":{"motd":"stdin"}}`, args: []string{"-s", sock, "apply"}},
		{name: "get stdin", args: []string{"-s", sock, "get", "settings.motd"}, out: `"stdin"`},
		{name: "apply malformed", args: []string{"-s", sock, "apply", bad}, code: 1, err: "neither TOML"},
		{name: "apply no settings", stdin: "[other]\na = 1\n", args: []string{"-s", sock, "apply", "-"}, code: 1, err: "did not contain a 'settings' section"},
		{name: "raw patch", args: []string{"-s", sock, "raw", "-u", "/settings?tx=r", "-m", "PATCH", "-d", `{"motd":"raw"}`}},
		{name: "raw tx verbose", args: []string{"-s", sock, "-v", "raw", "-u", "/tx?tx=r"}, out: "200 OK\n{\"motd\":\"raw\"}\n"},
		{name: "raw default subcommand", args: []string{"-s", sock, "-u", "/tx/list"}, out: `["r"]`},
		{name: "raw error", args: []string{"-s", sock, "raw", "-u", "/tx/commit?tx=empty", "-X", "POST"}, code: 1, err: "status 422: Tried to commit with no pending changes"},
		{name: "raw no uri", args: []string{"-s", sock, "raw"}, code: 2, err: "-u/--uri"},
		{name: "reboot", args: []string{"-s", sock, "reboot"}},
		{name: "unknown", args: []string{"-s", sock, "frobnicate"}, code: 2, err: "unknown subcommand"},
		{name: "help", args: []string{"--help"}, out: "-s, --socket-path"},
		{name: "raw help", args: []string{"raw", "-h"}, out: "-u, --uri"},
		{name: "set help", args: []string{"set", "--help"}, out: "-j, --json"},
		{name: "unknown flag", args: []string{"-s", sock, "--bogus"}, code: 2, err: "apiclient: unknown flag: --bogus"},
		{name: "unknown get flag", args: []string{"-s", sock, "get", "--bogus"}, code: 2, err: "Run 'apiclient get --help'"},
		{name: "long socket flag", args: []string{"--socket-path=" + sock, "raw", "--uri", "/tx/list", "--method", "get"}, out: `["r"]`},
		{name: "raw default with -X", args: []string{"--socket-path", sock, "-X", "DELETE", "-u", "/tx?tx=r"}},
		{name: "raw empty body", args: []string{"-s", sock, "-u", "/settings?tx=e", "-m", "PATCH", "-d", ""}, code: 1, err: "status 400"},
		{name: "reboot argument", args: []string{"-s", sock, "reboot", "now"}, code: 2, err: `unknown command "now"`},
		{name: "set null json", args: []string{"-s", sock, "set", "-j", "null"}, code: 2, err: "not a JSON object"},
		{name: "no server", args: []string{"-s", filepath.Join(dir, "none.sock"), "get"}, code: 1, err: "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, tt.stdin, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.err) {
				t.Errorf("apiclient %q = %d\nstdout %q\nstderr %q\nwant %d, stdout ~%q, stderr ~%q", tt.args, code, out, errOut, tt.code, tt.out, tt.err)
			}
		})
	}
	if rb.n != 1 {
		t.Errorf("reboots = %d, want 1", rb.n)
	}
}

func TestParseUserData(t *testing.T) {
	t.Parallel()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("[settings]\nmotd = \"gz\"\n"))
	zw.Close()
	for _, tt := range []struct {
		name, in string
		want     string // value of motd
		err      string
	}{
		{name: "toml", in: "[settings]\nmotd = \"t\"\n", want: "t"},
		{name: "json", in: `{"settings":{"motd":"j"}}`, want: "j"},
		{name: "gzip", in: gz.String(), want: "gz"},
		{name: "no settings", in: "[x]\n", err: "did not contain a 'settings' section"},
		{name: "settings not table", in: "settings = 1\n", err: "expected a table"},
		{name: "malformed", in: "[settings\n", err: "line 2, column 10"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := apiclient.ParseUserData("user-data", []byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseUserData(%q) = %v, want error ~%q", tt.in, err, tt.err)
				}
				if tt.name == "no settings" && !errors.Is(err, apiclient.ErrNoSettings) {
					t.Errorf("error %v is not ErrNoSettings", err)
				}
				return
			}
			if err != nil || s["motd"] != tt.want {
				t.Errorf("ParseUserData(%q) = %v, %v, want motd %q", tt.in, s, err, tt.want)
			}
		})
	}
}

func FuzzParseUserData(f *testing.F) {
	for _, s := range []string{"[settings]\nmotd = \"x\"\n", `{"settings":{}}`, "settings = 1", "\x1f\x8b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := apiclient.ParseUserData("fuzz", in)
		if err == nil && s == nil {
			t.Fatalf("ParseUserData(%q) returned nil settings without error", in)
		}
	})
}
