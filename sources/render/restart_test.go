package render

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/multicall"
	"github.com/petrel-os/petrel/sources/settings"
)

// TestSystemRestarterInProcess runs restart commands through links to a
// stand-in for the multi-call binary: a link named after one of the
// programs runs in process with its arguments and the changed keys; a
// program of the same name that is another file, and a link that names
// no program, run as new processes.
func TestSystemRestarterInProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	self := filepath.Join(dir, "petrel")
	if err := os.WriteFile(self, []byte("#!/bin/sh\necho petrel ran as a process: $0 $*\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"host-ctr", "settings-applier", "frobnicate"} {
		if err := os.Symlink("petrel", filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// Another program named host-ctr, not this binary.
	other := filepath.Join(dir, "other", "host-ctr")
	os.MkdirAll(filepath.Dir(other), 0o755)
	if err := os.WriteFile(other, []byte("#!/bin/sh\necho other host-ctr ran: $* \"$CHANGED_SETTINGS\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	type call struct {
		name    string
		args    []string
		changed []string
	}
	var calls []call
	programs := func(name string) (multicall.Program, bool) {
		if name != "host-ctr" && name != "settings-applier" {
			return nil, false
		}
		return func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			calls = append(calls, call{name, args, settings.Changed(ctx)})
			fmt.Fprintf(stderr, "%s ran in process\n", name)
			if len(args) > 0 && args[0] == "fail" {
				fmt.Fprintln(stderr, "it went wrong")
				return 1
			}
			return 0
		}, true
	}
	for _, tc := range []struct {
		name, cmd string
		changed   []string
		want      []call // calls in process
		out, err  string
	}{
		{"agent in process", filepath.Join(dir, "host-ctr") + " configure", []string{"settings.a", "settings.b"},
			[]call{{"host-ctr", []string{"configure"}, []string{"settings.a", "settings.b"}}}, "host-ctr ran in process\n", ""},
		{"all settings", filepath.Join(dir, "settings-applier") + " set-sysctl", nil,
			[]call{{"settings-applier", []string{"set-sysctl"}, nil}}, "settings-applier ran in process\n", ""},
		{"same name, another file", other + " configure", []string{"settings.a"}, nil, "other host-ctr ran: configure settings.a\n", ""},
		{"link to self, no such agent", filepath.Join(dir, "frobnicate") + " x", nil, nil, "petrel ran as a process: " + filepath.Join(dir, "frobnicate") + " x\n", ""},
		{"agent fails", filepath.Join(dir, "host-ctr") + " fail", nil, []call{{"host-ctr", []string{"fail"}, nil}},
			"host-ctr ran in process\nit went wrong\n", `run "` + filepath.Join(dir, "host-ctr") + ` fail" in process: exit status 1: host-ctr ran in process` + "\nit went wrong"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls = nil
			var out bytes.Buffer
			r := SystemRestarter{Programs: programs, Self: self, Output: &out}
			err := r.Restart(context.Background(), "svc", settings.Service{RestartCommands: []string{tc.cmd}}, tc.changed)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Restart = %v, want error %q", err, tc.err)
			}
			if fmt.Sprint(calls) != fmt.Sprint(tc.want) {
				t.Errorf("calls in process = %v, want %v", calls, tc.want)
			}
			if out.String() != tc.out {
				t.Errorf("output = %q, want %q", out.String(), tc.out)
			}
		})
	}
	// Without Self every command is a new process.
	calls = nil
	var out bytes.Buffer
	r := SystemRestarter{Programs: programs, Output: &out}
	if err := r.Restart(context.Background(), "svc", settings.Service{RestartCommands: []string{filepath.Join(dir, "host-ctr") + " configure"}}, nil); err != nil {
		t.Fatal(err)
	}
	if calls != nil || !strings.HasPrefix(out.String(), "petrel ran as a process") {
		t.Errorf("without Self: calls %v, output %q", calls, out.String())
	}
}
