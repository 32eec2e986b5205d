package userdata

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

func TestMainFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	if err := os.WriteFile(ran, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	userData := filepath.Join(dir, "user-data.toml")
	if err := os.WriteFile(userData, []byte("[settings]\nmotd = \"x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "none.sock")
	testkit.CheckMain(t, testkit.NoStdin(Main), []testkit.MainCase{
		{Name: "help", Args: []string{"--help"}, Code: 0, Out: "--providers"},
		{Name: "unknown flag", Args: []string{"--bogus"}, Code: 2, Err: "early-boot-config: unknown flag: --bogus"},
		{Name: "single-dash long flag", Args: []string{"-providers", "file"}, Code: 2, Err: "unknown shorthand flag"},
		{Name: "argument", Args: []string{"extra"}, Code: 2, Err: `unknown command "extra"`},
		{Name: "unknown provider", Args: []string{"--providers", "file,floppy"}, Code: 2, Err: `unknown provider "floppy"`},
		{Name: "bad log level", Args: []string{"--log-level", "loud"}, Code: 2, Err: `bad --log-level "loud"`},
		{Name: "already ran", Args: []string{"--marker", ran, "--socket-path", missing}, Code: 0, Out: "already applied"},
		{
			Name: "vmware off VMware", Code: 0, Out: "applied user data from 0 providers", Err: `provider="VMware guestinfo"`,
			Args: []string{"--providers", "vmware", "--marker", filepath.Join(dir, "vmware-marker"), "--socket-path", missing},
		},
		{Name: "help lists vmware", Args: []string{"--help"}, Code: 0, Out: "file,config-drive,imds,vmware"},
		{
			Name: "no API", Code: 1, Err: "none.sock",
			Args: []string{"--providers", "file", "--user-data-file", userData, "--marker", filepath.Join(dir, "marker"), "--socket-path", missing},
		},
	})
}
