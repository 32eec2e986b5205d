package render

import (
	"path/filepath"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

func TestMainFlags(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "none.sock")
	testkit.CheckMain(t, Run, []testkit.MainCase{
		{Name: "help", Args: []string{"--help"}, Code: 0, Out: "--daemon"},
		{Name: "set-hostname help", Args: []string{"set-hostname", "--help"}, Code: 0, Out: "settings-applier set-hostname FILE"},
		{Name: "unknown flag", Args: []string{"--bogus"}, Code: 2, Err: "settings-applier: unknown flag: --bogus"},
		{Name: "single-dash long flag", Args: []string{"-all"}, Code: 2, Err: "unknown shorthand flag"},
		{Name: "argument", Args: []string{"extra"}, Code: 2, Err: `unknown command "extra"`},
		{Name: "set-hostname without file", Args: []string{"set-hostname"}, Code: 2, Err: "accepts 1 arg(s), received 0"},
		{Name: "bad log level", Args: []string{"--all", "--log-level", "loud"}, Code: 2, Err: `bad --log-level "loud"`},
		{Name: "keys not JSON", Args: []string{"--daemon", "--socket-path", missing}, Stdin: "motd", Code: 2, Err: "expected a JSON list of strings"},
		{Name: "no API", Args: []string{"--socket-path", missing}, Stdin: `["settings.motd"]`, Code: 1, Err: "none.sock"},
		{Name: "set-sysctl help", Args: []string{"set-sysctl", "--help"}, Code: 0, Out: "--proc string"},
		{Name: "set-sysctl without API", Args: []string{"set-sysctl", "--socket-path", missing}, Code: 1, Err: "read settings.kernel.sysctl: "},
		{Name: "load-modules without API", Args: []string{"load-modules", "--socket-path", missing, "--modprobe", "/nonexistent"}, Code: 1, Err: "read settings.kernel.modules: "},
		{Name: "set-hostname missing file", Args: []string{"set-hostname", filepath.Join(t.TempDir(), "none")}, Code: 1, Err: "settings-applier: "},
	})
}
