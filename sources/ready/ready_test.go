package ready

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/bootdisk"
	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/testkit"
)

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]string
		errs     []string // substrings of the error; nil = no error
	}{
		{"plain", "NAME=Petrel\nID=petrel\n", map[string]string{"NAME": "Petrel", "ID": "petrel"}, nil},
		{"quotes", "PRETTY_NAME=\"Petrel OS 0.1.0\"\nX='a \"b\"'\n", map[string]string{"PRETTY_NAME": "Petrel OS 0.1.0", "X": `a "b"`}, nil},
		{"escapes", `A="x\"y\\z\$"` + "\n", map[string]string{"A": `x"y\z$`}, nil},
		{"comments and blanks", "# c\n\n  BUILD_ID=abc  \n", map[string]string{"BUILD_ID": "abc"}, nil},
		{"empty value", "A=\n", map[string]string{"A": ""}, nil},
		{"every bad line", "no equals\nlower=x\nA=\"open\nB=two words\n", nil,
			[]string{"line 1:", "line 2:", "line 3: value of A: unterminated", "line 4: value of B: unquoted"}},
		{"text after quote", "A=\"x\"y\n", nil, []string{"line 1: value of A: text after closing quote"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOSRelease(strings.NewReader(tt.in))
			if tt.errs != nil {
				if !errors.Is(err, ErrOSRelease) {
					t.Fatalf("err = %v, want ErrOSRelease", err)
				}
				for _, s := range tt.errs {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

const (
	uuidA = "11111111-2222-3333-4444-555555555501"
	uuidB = "11111111-2222-3333-4444-555555555502"
)

// makeDisk lays out a 64 MiB GPT disk image with sgdisk: ESP, BOOT-A,
// ROOT-A, BOOT-B; the BOOT partitions get uuidA and uuidB.
func makeDisk(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 64<<20); err != nil {
		t.Fatal(err)
	}
	boot := disklayout.TypeBoot.String()
	testkit.Run(t, "sgdisk",
		"-n", "1:1M:+4M", "-t", "1:"+disklayout.TypeEFISystem.String(), "-c", "1:EFI-A",
		"-n", "2:0:+4M", "-t", "2:"+boot, "-c", "2:PETREL-BOOT-A", "-u", "2:"+uuidA,
		"-n", "3:0:+4M", "-t", "3:"+disklayout.TypeRoot.String(), "-c", "3:PETREL-ROOT-A",
		"-n", "4:0:+4M", "-t", "4:"+boot, "-c", "4:PETREL-BOOT-B", "-u", "4:"+uuidB,
		path)
}

// fakeHost makes a sysfs block directory and a dev directory: vda is the
// disk image, vda1 a partition entry, loop0 a virtual device that must be
// skipped, and vdb a disk without a GPT.
func fakeHost(t *testing.T, cmdline string) Options {
	t.Helper()
	dir := t.TempDir()
	o := Options{
		OSRelease:   filepath.Join(dir, "os-release"),
		Cmdline:     filepath.Join(dir, "cmdline"),
		SysBlockDir: filepath.Join(dir, "sys"),
		DevDir:      filepath.Join(dir, "dev"),
	}
	for _, d := range []string{"sys/vda", "sys/vda1", "sys/vdb", "sys/loop0", "dev"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	makeDisk(t, filepath.Join(o.DevDir, "vda"))
	files := map[string]string{
		"sys/vda1/partition": "1\n",
		"dev/vdb":            strings.Repeat("\x00", 2048*512),
		"cmdline":            cmdline,
		"os-release":         "NAME=\"Petrel OS\"\nPRETTY_NAME=\"Petrel OS 0.1.0 (metal-dev)\"\nBUILD_ID=1a2b3c4\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func verityCmdline(uuid string) string {
	return `console=ttyS0,115200n8 root=/dev/dm-0 "dm-mod.create=root,,,ro,0 8 verity 1 PARTUUID=` + uuid + `/PARTNROFF=1 PARTUUID=` + uuid + `/PARTNROFF=2 4096 4096 1 1 sha256 00 00" -- systemd.log_color=0` + "\n"
}

func TestFindBank(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, cmdline string
		want          bootstate.Bank
		err           error
	}{
		{"bank A", verityCmdline(uuidA), bootstate.BankA, nil},
		{"bank B", verityCmdline(uuidB), bootstate.BankB, nil},
		{"bank B on a larger disk", verityCmdline(uuidB), bootstate.BankB, nil},
		{"unknown PARTUUID", verityCmdline("99999999-2222-3333-4444-555555555501"), 0, bootdisk.ErrBankUnknown},
		{"no verity table", "console=ttyS0\n", 0, bootdisk.ErrNoBootUUID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fakeHost(t, tt.cmdline)
			if strings.HasSuffix(tt.name, "larger disk") {
				// The image written to a larger disk: the backup GPT is
				// not at the end until first boot moves it.
				if err := os.Truncate(filepath.Join(o.DevDir, "vda"), 1<<30); err != nil {
					t.Fatal(err)
				}
			}
			got, err := FindBank(ctx, o.Cmdline, o.SysBlockDir, o.DevDir)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err == nil && got != tt.want {
				t.Errorf("bank = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestMain(t *testing.T) {
	ctx := context.Background()
	t.Run("ready", func(t *testing.T) {
		o := fakeHost(t, verityCmdline(uuidB))
		host, motd := filepath.Join(t.TempDir(), "hostname"), filepath.Join(t.TempDir(), "motd")
		os.WriteFile(host, []byte("petrel-test\n"), 0o644)
		os.WriteFile(motd, []byte("hello\n"), 0o644)
		var out, errb bytes.Buffer
		code := Main(ctx, []string{"--os-release", o.OSRelease, "--cmdline", o.Cmdline, "--sys-block", o.SysBlockDir, "--dev", o.DevDir,
			"--hostname-file", host, "--motd", motd, "--selinuxfs", filepath.Join(t.TempDir(), "none")}, &out, &errb)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, errb.String())
		}
		want := "petrel: selinux disabled\npetrel: hostname petrel-test\npetrel: motd: hello\npetrel: host ready: Petrel OS 0.1.0 (metal-dev) build 1a2b3c4, bank B\n"
		if out.String() != want {
			t.Errorf("stdout = %q, want %q", out.String(), want)
		}
	})
	t.Run("missing parts still print the line", func(t *testing.T) {
		o := fakeHost(t, "console=ttyS0\n")
		if err := os.WriteFile(o.OSRelease, []byte("NAME=Petrel\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		none := filepath.Join(t.TempDir(), "none")
		code := Main(ctx, []string{"--os-release", o.OSRelease, "--cmdline", o.Cmdline, "--sys-block", o.SysBlockDir, "--dev", o.DevDir,
			"--hostname-file", none, "--motd", none, "--selinuxfs", none}, &out, &errb)
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		if want := "petrel: selinux disabled\npetrel: host ready: unknown build unknown, bank unknown\n"; out.String() != want {
			t.Errorf("stdout = %q, want %q", out.String(), want)
		}
		for _, s := range []string{"no PRETTY_NAME", "no BUILD_ID", "find booted bank"} {
			if !strings.Contains(errb.String(), s) {
				t.Errorf("stderr %q lacks %q", errb.String(), s)
			}
		}
	})
	for _, tt := range []struct {
		name     string
		args     []string
		code     int
		out, err string // substrings
	}{
		{name: "help", args: []string{"--help"}, code: 0, out: "--sys-block directory"},
		{name: "argument", args: []string{"extra"}, code: 2, err: `petrel-ready: unknown command "extra"`},
		{name: "unknown flag", args: []string{"--bogus"}, code: 2, err: "petrel-ready: unknown flag: --bogus"},
		{name: "single-dash long flag", args: []string{"-os-release", "/x"}, code: 2, err: "unknown shorthand flag"},
		{name: "missing value", args: []string{"--dev"}, code: 2, err: "flag needs an argument: --dev"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(ctx, tt.args, &out, &errb)
			if code != tt.code || !strings.Contains(out.String(), tt.out) || !strings.Contains(errb.String(), tt.err) {
				t.Errorf("Main(%q) = %d, stdout %q, stderr %q; want %d, stdout ~%q, stderr ~%q",
					tt.args, code, out.String(), errb.String(), tt.code, tt.out, tt.err)
			}
			if tt.code == 2 && out.Len() != 0 {
				t.Errorf("Main(%q) printed %q on a usage error, want nothing", tt.args, out.String())
			}
		})
	}
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add("NAME=\"Petrel OS\"\nBUILD_ID=abc\n")
	f.Add("A='x'\n# c\nB=\"\\\"\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		vars, err := ParseOSRelease(strings.NewReader(s))
		if err != nil {
			return
		}
		for k := range vars {
			if !validKey(k) {
				t.Fatalf("accepted key %q", k)
			}
		}
	})
}

func TestDetails(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "hostname")
	motd := filepath.Join(dir, "motd")
	os.WriteFile(host, []byte("petrel-test\n"), 0o644)
	os.WriteFile(motd, []byte("hello from user data\nsecond line\n"), 0o644)
	none := filepath.Join(dir, "none")
	got := Details(Options{Hostname: host, Motd: motd, SELinuxFS: none})
	want := []string{"petrel: selinux disabled", "petrel: hostname petrel-test", "petrel: motd: hello from user data", "petrel: motd: second line"}
	if !slices.Equal(got, want) {
		t.Errorf("Details = %q, want %q", got, want)
	}
	if got := Details(Options{Hostname: none, Motd: none, SELinuxFS: none}); !slices.Equal(got, []string{"petrel: selinux disabled"}) {
		t.Errorf("Details without files = %q, want only the SELinux line", got)
	}
}

// TestSELinuxLine reads a fake selinuxfs, configuration and procfs.
func TestSELinuxLine(t *testing.T) {
	dir := t.TempDir()
	fs, proc := filepath.Join(dir, "selinux"), filepath.Join(dir, "proc")
	os.MkdirAll(fs, 0o755)
	os.MkdirAll(filepath.Join(proc, "self", "attr"), 0o755)
	conf := filepath.Join(dir, "config")
	os.WriteFile(conf, []byte("SELINUX=enforcing\nSELINUXTYPE=petrel\n"), 0o644)
	os.WriteFile(filepath.Join(proc, "self", "attr", "current"), []byte("system_u:system_r:system_t:s0-s0:c0.c1023\x00"), 0o644)
	o := Options{SELinuxFS: fs, SELinuxConf: conf, Proc: proc}
	for _, c := range []struct{ enforce, want string }{
		{"1", "petrel: selinux enforcing, policy petrel, context system_u:system_r:system_t:s0-s0:c0.c1023"},
		{"0", "petrel: selinux permissive, policy petrel, context system_u:system_r:system_t:s0-s0:c0.c1023"},
	} {
		os.WriteFile(filepath.Join(fs, "enforce"), []byte(c.enforce), 0o644)
		if got := SELinuxLine(o); got != c.want {
			t.Errorf("enforce %s: SELinuxLine = %q, want %q", c.enforce, got, c.want)
		}
	}
}
