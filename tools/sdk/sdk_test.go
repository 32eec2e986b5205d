package sdk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/petrel-os/petrel/tools/project"
)

func TestParseVersion(t *testing.T) {
	t.Parallel()
	// Real first lines of the tools' version output on Debian 12.
	for _, tt := range []struct{ out, want string }{
		{"RPM version 4.18.0", "4.18.0"},
		{"Version: 0.17.3 (Features: DeltaRPM LegacyWeakdeps )", "0.17.3"},
		{"bubblewrap 0.8.0", "0.8.0"},
		{"apt 2.6.1 (amd64)", "2.6.1"},
		{"Debian 'dpkg-deb' package archive backend version 1.21.22 (amd64).", "1.21.22"},
		{"cpio (GNU cpio) 2.13", "2.13"},
		{"fsck.erofs 1.5", "1.5"},
		{"mke2fs 1.47.0 (5-Feb-2023)", "1.47.0"},
		{"mcopy (GNU mtools) 4.0.32", "4.0.32"},
		{"GPT fdisk (sgdisk) version 1.0.9", "1.0.9"},
		{"sfdisk from util-linux 2.38.1", "2.38.1"},
		{"veritysetup 2.6.1 flags: UDEV BLKID KEYRING KERNEL_CAPI", "2.6.1"},
		{"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)", "7.2.22"},
		{"grub-mkimage (GRUB) 2.06-13+deb12u2", "2.06"},
		{"kmod version 30\n+ZSTD +XZ -ZLIB", "30"},
		{"*** LZ4 command line interface 64-bits v1.9.4, by Yann Collet ***", "1.9.4"},
		{"*** Zstandard CLI (64-bit) v1.5.4, by Yann Collet ***", "1.5.4"},
		{"git version 2.39.5", "2.39.5"},
		{"x86_64 no version here", ""},
	} {
		if got := ParseVersion(tt.out); got != tt.want {
			t.Errorf("ParseVersion(%q) = %q, want %q", tt.out, got, tt.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"4.18.0", "4.18", 0}, {"4.18", "4.18.1", -1}, {"4.19", "4.18.9", 1}, {"10.0", "9.9", 1}, {"30", "30", 0},
	} {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// fakeTool writes an executable script named name into dir that prints out.
func fakeTool(t *testing.T, dir, name, out string) {
	t.Helper()
	script := "#!/bin/sh\necho '" + out + "'\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	fakeTool(t, dir, "newtool", "newtool version 2.5.1")
	fakeTool(t, dir, "oldtool", "oldtool 1.2")
	fakeTool(t, dir, "quiet", "no number")
	t.Setenv("PATH", dir)
	file := filepath.Join(dir, "firmware.fd")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tools := []project.Tool{
		{Command: "newtool", Package: "new", MinVersion: "2.5"},
		{Command: "oldtool", Package: "old", MinVersion: "1.10"},
		{Command: "quiet", Package: "quiet", MinVersion: "1"},
		{Command: "absent-tool", Package: "absent"},
		{Command: "newtool", Package: "new"},
		{File: file, Package: "fw"},
		{File: filepath.Join(dir, "nope.fd"), Package: "fw2"},
	}
	missing, err := Check(context.Background(), tools)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range missing {
		got = append(got, m.Tool.Name()+": "+m.Reason)
	}
	want := []string{
		"oldtool: version 1.2 is older than the minimum 1.10",
		"quiet: no version number in the output of quiet --version",
		"absent-tool: not found in PATH",
		filepath.Join(dir, "nope.fd") + ": file does not exist",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Check() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	err = &MissingError{Missing: missing}
	if !strings.Contains(err.Error(), "install them with: apt-get install --no-install-recommends old quiet absent fw2\nor run: buildctl setup") {
		t.Errorf("MissingError = %q", err)
	}
	if !errors.Is(err, ErrMissing) {
		t.Errorf("errors.Is(MissingError, ErrMissing) = false")
	}
}

func TestInstall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tool := project.Tool{File: filepath.Join(dir, "installed"), Package: "pkg-a"}
	other := project.Tool{File: filepath.Join(dir, "other"), Package: "pkg-b"}
	present := project.Tool{File: dir, Package: "present"}
	for _, tt := range []struct {
		name    string
		root    bool
		creates bool // the fake apt-get creates the files
		want    []string
		wantErr bool
	}{
		{"root", true, true, []string{
			"DEBIAN_FRONTEND=noninteractive apt-get update",
			"DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends pkg-a pkg-b",
		}, false},
		{"sudo", false, true, []string{
			"DEBIAN_FRONTEND=noninteractive sudo --preserve-env=DEBIAN_FRONTEND apt-get update",
			"DEBIAN_FRONTEND=noninteractive sudo --preserve-env=DEBIAN_FRONTEND apt-get install -y --no-install-recommends pkg-a pkg-b",
		}, false},
		{"still missing", true, false, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			run := func(_ context.Context, env []string, _, _ io.Writer, name string, args ...string) error {
				calls = append(calls, strings.Join(append(append(env, name), args...), " "))
				if tt.creates && strings.Contains(strings.Join(args, " "), "install") {
					for _, f := range []string{tool.File, other.File} {
						if err := os.WriteFile(f, nil, 0o644); err != nil {
							return err
						}
					}
				}
				return nil
			}
			for _, f := range []string{tool.File, other.File} {
				os.Remove(f)
			}
			var out bytes.Buffer
			err := install(context.Background(), []project.Tool{tool, present, other}, &out, &out, run, tt.root)
			if tt.wantErr {
				var me *MissingError
				if !errors.As(err, &me) || len(me.Missing) != 2 {
					t.Fatalf("install() = %v, want a MissingError of 2 tools", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("install(): %v", err)
			}
			if strings.Join(calls, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("install() ran\n%s\nwant\n%s", strings.Join(calls, "\n"), strings.Join(tt.want, "\n"))
			}
			calls = nil
			if err := install(context.Background(), []project.Tool{tool, other}, &out, &out, run, tt.root); err != nil || calls != nil {
				t.Errorf("second install() = %v and ran %q, want nothing to do", err, calls)
			}
		})
	}
}

// TestProjectTools checks the [[sdk.tool]] list of the repository's own
// Twoliter.toml against this machine: every tool the build and its tests
// need must be installed.
func TestProjectTools(t *testing.T) {
	t.Parallel()
	var m project.Manifest
	if _, err := toml.DecodeFile(filepath.Join("..", "..", "Twoliter.toml"), &m); err != nil {
		t.Fatalf("decode Twoliter.toml: %v", err)
	}
	if len(m.SDK.Tools) < 30 {
		t.Fatalf("Twoliter.toml lists %d tools, want the full list", len(m.SDK.Tools))
	}
	missing, err := Check(context.Background(), m.SDK.Tools)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Fatal(&MissingError{Missing: missing})
	}
}
