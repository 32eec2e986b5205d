package agent

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestMain_Dispatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		out, err string // substrings of stdout and stderr
	}{
		{"link name", []string{"/usr/bin/partflip", "--help"}, 0, "partflip", ""},
		{"relative link name", []string{"apiclient", "--help"}, 0, "apiclient", ""},
		{"through petrel", []string{"/usr/bin/petrel", "petrel-ready", "--help"}, 0, "petrel-ready", ""},
		{"petrel help", []string{"petrel", "--help"}, 0, "", "agents: apiclient, apiserver,"},
		{"petrel alone", []string{"petrel"}, 2, "", "usage: petrel AGENT"},
		{"unknown link", []string{"/usr/bin/frobnicate"}, 2, "", `unknown agent "frobnicate"`},
		{"unknown agent", []string{"petrel", "frobnicate", "x"}, 2, "", `unknown agent "frobnicate"`},
		{"no args", nil, 2, "", "no program name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := Main(context.Background(), tc.args, &out, &errb)
			if code != tc.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tc.code, errb.String())
			}
			if !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) {
				t.Errorf("stdout %q, stderr %q: want them to contain %q and %q", out.String(), errb.String(), tc.out, tc.err)
			}
		})
	}
}

// TestSpecLinksEveryAgent checks that the os package links exactly the
// agents that Main knows to the multi-call binary.
func TestSpecLinksEveryAgent(t *testing.T) {
	t.Parallel()
	spec, err := os.ReadFile("../../packages/os/os.spec")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^%global agents (.*)$`).FindSubmatch(spec)
	if m == nil {
		t.Fatalf("packages/os/os.spec: no %s line", "%global agents")
	}
	got := strings.Fields(string(m[1]))
	slices.Sort(got)
	if !slices.Equal(got, Names()) {
		t.Errorf("packages/os/os.spec: %%global agents = %v, want %v", got, Names())
	}
}
