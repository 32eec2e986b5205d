package hostexec

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/petrel-os/petrel/sources/api"
)

// TestCloseReason checks that reasons fit a Close frame (123 bytes),
// keep their end and stay UTF-8.
func TestCloseReason(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"short", strings.Repeat("x", 123), strings.Repeat("é", 100) + ": executable file not found in $PATH"} {
		got := closeReason(in)
		if len(got) > 123 || !utf8.ValidString(got) {
			t.Errorf("closeReason(%q) = %q: %d bytes, valid UTF-8 %v", in, got, len(got), utf8.ValidString(got))
		}
		if len(in) <= 123 && got != in {
			t.Errorf("closeReason(%q) = %q, want it unchanged", in, got)
		}
		if len(in) > 123 && (!strings.HasPrefix(got, "…") || !strings.HasSuffix(in, strings.TrimPrefix(got, "…"))) {
			t.Errorf("closeReason(%q) = %q, want an ellipsis and the end", in, got)
		}
	}
}

// TestProcessSpec checks the exec'd process's settings: the container's,
// with the command, and for a terminal its size and a TERM.
func TestProcessSpec(t *testing.T) {
	t.Parallel()
	base := specs.Process{Args: []string{"/bin/sleep", "1"}, Env: []string{"PATH=/bin"}, Cwd: "/root", User: specs.User{UID: 7}}
	for _, tt := range []struct {
		name string
		base specs.Process
		init api.ExecInit
		want specs.Process
	}{
		{"pipes", base, api.ExecInit{Command: []string{"ls", "-l"}},
			specs.Process{Args: []string{"ls", "-l"}, Env: []string{"PATH=/bin"}, Cwd: "/root", User: specs.User{UID: 7}}},
		{"terminal", base, api.ExecInit{Command: []string{"sh"}, TTY: &api.ExecTTY{Size: &api.WindowSize{Rows: 24, Cols: 80}}},
			specs.Process{Args: []string{"sh"}, Terminal: true, ConsoleSize: &specs.Box{Height: 24, Width: 80}, Env: []string{"PATH=/bin", "TERM=xterm"}, Cwd: "/root", User: specs.User{UID: 7}}},
		{"container's TERM", specs.Process{Env: []string{"TERM=vt100"}}, api.ExecInit{Command: []string{"sh"}, TTY: &api.ExecTTY{}},
			specs.Process{Args: []string{"sh"}, Terminal: true, Env: []string{"TERM=vt100"}}},
	} {
		got := processSpec(tt.base, tt.init)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: processSpec = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
