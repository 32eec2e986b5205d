package generator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/multicall"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"bork seed", []string{"bork", "seed"}},
		{"  a   b\t c ", []string{"a", "b", "c"}},
		{`render --template '{{ x }}/y:v1'`, []string{"render", "--template", "{{ x }}/y:v1"}},
		{`a "b \"c\" \\ d" e\ f`, []string{"a", `b "c" \ d`, "e f"}},
		{`a''b ""`, []string{"ab", ""}},
	} {
		got, err := Split(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Split(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`a 'b`, `a "b`, `a\`} {
		if _, err := Split(bad); !errors.Is(err, ErrSplit) {
			t.Errorf("Split(%q) err = %v", bad, err)
		}
	}
}

func FuzzSplit(f *testing.F) {
	f.Add(`a "b c" 'd'`)
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Split(s)
		if err == nil && strings.Trim(s, " \t\n") == "" && len(words) != 0 {
			t.Fatalf("blank line gave %q", words)
		}
	})
}

// fakeAPI serves generators and settings from memory.
type fakeAPI struct {
	gens    map[string]string
	live    map[string]any
	pending map[string]any
	set     []any
}

func (f *fakeAPI) Do(_ context.Context, method, uri string, _ []byte) ([]byte, error) {
	switch {
	case uri == api.PathSettingGenerators:
		return json.Marshal(f.gens)
	case uri == api.PathSettings:
		return json.Marshal(f.live)
	case strings.HasPrefix(uri, api.PathTx+"?"):
		return json.Marshal(f.pending)
	}
	return nil, fmt.Errorf("unexpected %s %s", method, uri)
}

func (f *fakeAPI) Set(_ context.Context, tx string, s any) error {
	f.set = append(f.set, s)
	return nil
}

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gen")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun(t *testing.T) {
	f := &fakeAPI{
		gens: map[string]string{
			"settings.motd":                    `/bin/echo '"generated motd"'`,
			"settings.updates.seed":            script(t, "echo 1234\n"),
			"settings.network.hostname":        `/bin/sh -c "exit 2"`,
			"settings.kubernetes.cluster-name": `/bin/echo '"never"'`, // pending value wins
			"settings.host-containers":         `/bin/echo never`,     // a sub-key is live
			"settings.ntp.time-servers":        script(t, `echo '["a.example", "b.example"]'`+"\n"),
		},
		live:    map[string]any{"host-containers": map[string]any{"admin": map[string]any{"enabled": true}}},
		pending: map[string]any{"kubernetes": map[string]any{"cluster-name": "c1"}},
	}
	res, err := Run(context.Background(), Config{API: f, Transaction: "launch"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"motd":    "generated motd",
		"updates": map[string]any{"seed": float64(1234)},
		"ntp":     map[string]any{"time-servers": []any{"a.example", "b.example"}},
	}
	if len(f.set) != 1 || !reflect.DeepEqual(f.set[0], want) {
		t.Fatalf("patched %#v", f.set)
	}
	if !reflect.DeepEqual(res.Skipped, []string{"settings.network.hostname"}) ||
		!reflect.DeepEqual(res.Populated, []string{"settings.host-containers", "settings.kubernetes.cluster-name"}) {
		t.Fatalf("result %+v", res)
	}
}

func TestRunFailures(t *testing.T) {
	for _, tc := range []struct {
		name, cmd, want string
	}{
		{"exit 1", "/bin/false", "exit status 1"},
		{"exit 3", `/bin/sh -c "echo oops >&2; exit 3"`, "oops"},
		{"not JSON", "/bin/echo not-json", `expected a JSON value`},
		{"missing program", "/nonexistent/generator", "no such file"},
		{"bad quoting", `/bin/echo "x`, "unterminated double quote"},
		{"timeout", "/bin/sleep 5", "timed out after 200ms"},
		{"invalid value", `/bin/echo 5000`, "settings.updates.seed: expected an integer from 0 to 2047"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeAPI{gens: map[string]string{"settings.updates.seed": tc.cmd}, live: map[string]any{}, pending: map[string]any{}}
			_, err := Run(context.Background(), Config{API: f, Transaction: "launch", Timeout: 200 * time.Millisecond})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if len(f.set) != 0 {
				t.Fatalf("patched after a failure: %v", f.set)
			}
		})
	}
}

func TestProxyEnv(t *testing.T) {
	live := map[string]any{
		"network":    map[string]any{"https-proxy": "http://p:3128", "no-proxy": []any{".corp"}},
		"kubernetes": map[string]any{"api-server": "https://k8s"},
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	f := &fakeAPI{gens: map[string]string{"settings.motd": script(t, `printf '%s|%s' "$HTTPS_PROXY" "$NO_PROXY" > `+out+"\necho '\"m\"'\n")}, live: live, pending: map[string]any{}}
	if _, err := Run(context.Background(), Config{API: f, Transaction: "t"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); string(got) != "http://p:3128|localhost,127.0.0.1,.corp,https://k8s" {
		t.Fatalf("env = %q", got)
	}
}

// TestRunBadKeyFromAPI: a key from the API that the datastore cannot hold
// fails the run with an error naming where it came from and matching
// datastore.ErrInvalidKey.
func TestRunBadKeyFromAPI(t *testing.T) {
	f := &fakeAPI{gens: map[string]string{"settings.updates.seed": "true"}, live: map[string]any{"bad key": "x"}}
	_, err := Run(context.Background(), Config{API: f, Transaction: "tx"})
	if !errors.Is(err, datastore.ErrInvalidKey) || !strings.Contains(err.Error(), "read live settings: flatten settings: invalid key") {
		t.Fatalf("Run = %v, want a datastore.ErrInvalidKey naming the live settings", err)
	}
}

// TestRunInProcess: a generator whose program is a link to this
// executable, named after one of the programs, runs in process, its exit
// status read as a process's would be; another program, or any program
// when proxy variables are set, runs as a new process.
func TestRunInProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	self := filepath.Join(dir, "petrel")
	if err := os.WriteFile(self, []byte("#!/bin/sh\necho '\"petrel ran as a process\"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("petrel", filepath.Join(dir, "sundog")); err != nil {
		t.Fatal(err)
	}
	var calls [][]string
	programs := multicall.Programs(func(name string) (multicall.Program, bool) {
		if name != "sundog" {
			return nil, false
		}
		return func(_ context.Context, args []string, stdout, stderr io.Writer) int {
			calls = append(calls, args)
			switch args[0] {
			case "skip":
				return ExitSkip
			case "fail":
				fmt.Fprintln(stderr, "it went wrong")
				return 1
			}
			fmt.Fprintln(stdout, `"in process"`)
			return 0
		}, true
	})
	sundog := filepath.Join(dir, "sundog")
	for _, tc := range []struct {
		name, cmd string
		live      map[string]any
		want      any // the generated motd, nil when skipped
		calls     int
		err       string
	}{
		{name: "in process", cmd: sundog + " generate", want: "in process", calls: 1},
		{name: "skips in process", cmd: sundog + " skip", calls: 1},
		{name: "fails in process", cmd: sundog + " fail", calls: 1, err: `settings.motd: "` + sundog + ` fail": exit status 1: it went wrong`},
		{name: "another program", cmd: self + " generate", want: "petrel ran as a process"},
		{name: "proxy set", cmd: sundog + " generate", live: map[string]any{"network": map[string]any{"https-proxy": "http://p:3128"}}, want: "petrel ran as a process"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls = nil
			live := tc.live
			if live == nil {
				live = map[string]any{}
			}
			f := &fakeAPI{gens: map[string]string{"settings.motd": tc.cmd}, live: live, pending: map[string]any{}}
			res, err := Run(context.Background(), Config{API: f, Transaction: "t", Programs: programs, Self: self})
			if tc.err != "" {
				if !errors.Is(err, ErrGenerator) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Run = %v, want an ErrGenerator containing %q", err, tc.err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if len(calls) != tc.calls {
				t.Errorf("%d calls in process, want %d", len(calls), tc.calls)
			}
			switch {
			case tc.want == nil && tc.err == "":
				if len(f.set) != 0 || len(res.Skipped) != 1 {
					t.Errorf("set %v, skipped %v; want the setting skipped", f.set, res.Skipped)
				}
			case tc.want != nil:
				if len(f.set) != 1 || !reflect.DeepEqual(f.set[0], map[string]any{"motd": tc.want}) {
					t.Errorf("set %v, want motd %q", f.set, tc.want)
				}
			}
		})
	}
}
