package selinux

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     Config
		errs     []string
	}{
		{"shipped", "# comment\nSELINUX=enforcing\nSELINUXTYPE=petrel\n", Config{Enforcing, "petrel"}, nil},
		{"quoted and spaced", " SELINUX = \"permissive\"\nSELINUXTYPE=petrel\nSETLOCALDEFS=0\n", Config{Permissive, "petrel"}, nil},
		{"disabled needs no type", "SELINUX=disabled\n", Config{Mode: Disabled}, nil},
		{"bad mode and type", "SELINUX=on\nSELINUXTYPE=../x\n", Config{Type: "../x"},
			[]string{`cfg:1: SELINUX="on": expected enforcing, permissive or disabled`, `cfg:2: SELINUXTYPE="../x": expected a directory name`}},
		{"no mode", "SELINUXTYPE=petrel\n", Config{Type: "petrel"}, []string{"cfg: no SELINUX="}},
		{"no type", "SELINUX=enforcing\n", Config{Mode: Enforcing}, []string{"cfg: no SELINUXTYPE="}},
		{"not key=value", "SELINUX=enforcing\nSELINUXTYPE=petrel\nenforcing\n", Config{Enforcing, "petrel"}, []string{`cfg:3: "enforcing" is not KEY=VALUE`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig(strings.NewReader(tt.in), "cfg")
			if got != tt.want {
				t.Errorf("config = %+v, want %+v", got, tt.want)
			}
			if len(tt.errs) == 0 && err != nil {
				t.Fatalf("error %v", err)
			}
			if len(tt.errs) > 0 && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v, want ErrConfig", err)
			}
			for _, e := range tt.errs {
				if !strings.Contains(err.Error(), e) {
					t.Errorf("error %q lacks %q", err, e)
				}
			}
		})
	}
}

func TestEnforce(t *testing.T) {
	for _, tt := range []struct {
		mode, cmdline string
		want          bool
	}{
		{Enforcing, "", true}, {Permissive, "", false}, {Enforcing, "0", false}, {Permissive, "1", true}, {Enforcing, "x", false},
	} {
		if got := Enforce(Config{Mode: tt.mode, Type: "petrel"}, tt.cmdline); got != tt.want {
			t.Errorf("Enforce(%s, enforcing=%q) = %v, want %v", tt.mode, tt.cmdline, got, tt.want)
		}
	}
}

func TestPolicyFile(t *testing.T) {
	etc := t.TempDir()
	dir := filepath.Join(etc, "selinux", "petrel", "policy")
	os.MkdirAll(dir, 0o755)
	for _, n := range []string{"policy.31", "policy.33", "policy.34", "policy.x"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	c := Config{Enforcing, "petrel"}
	if got, err := PolicyFile(etc, c, 33); err != nil || got != filepath.Join(dir, "policy.33") {
		t.Errorf("PolicyFile(max 33) = %q, %v; want policy.33", got, err)
	}
	if got, err := PolicyFile(etc, c, 32); err != nil || got != filepath.Join(dir, "policy.31") {
		t.Errorf("PolicyFile(max 32) = %q, %v; want policy.31", got, err)
	}
	if _, err := PolicyFile(etc, c, 30); err == nil || !strings.Contains(err.Error(), "no policy.N with N <= 30") {
		t.Errorf("PolicyFile(max 30) error %v, want none found", err)
	}
}

// TestDenials finds the kernel's and systemd's denial lines as they
// appear on a Petrel console, so the boot tests that count them can fail.
func TestDenials(t *testing.T) {
	log := strings.Join([]string{
		"[  31.241] petrel-init: loaded SELinux policy petrel (/usr/share/factory/etc/selinux/petrel/policy/policy.33), enforcing",
		`[  33.003] [   12.113504] audit: type=1400 audit(1796429325.068:3): avc:  denied  { mounton } for  pid=1 comm="systemd" path="/sys/fs/selinux" dev="selinuxfs" ino=1 scontext=system_u:system_r:init_t:s0-s0:c0.c1023 tcontext=system_u:object_r:security_t:s0 tclass=dir permissive=0`,
		`[  40.000] [   20.000000] audit: type=1107 audit(1796429330.000:9): pid=1 uid=0 auid=4294967295 ses=4294967295 subj=system_u:system_r:init_t:s0 msg='avc:  denied  { start } for auid=n/a uid=0 gid=0 cmdline="" scontext=system_u:system_r:control_t:s0 tcontext=system_u:object_r:os_t:s0 tclass=service permissive=0'`,
		"[  41.000] [   21.000000] SELinux:  Class user_namespace not defined in policy.",
		"[  41.000] [   21.000000] SELinux:  Permission cmd in class io_uring not defined in policy.",
		"[  41.100] petrel: selinux enforcing, policy petrel, context system_u:system_r:system_t:s0-s0:c0.c1023",
	}, "\r\n")
	if got := Denials(log); len(got) != 2 || !strings.Contains(got[0], "{ mounton }") || !strings.Contains(got[1], "tclass=service") {
		t.Errorf("Denials = %q, want the mounton and the service denial", got)
	}
	if got := Undefined(log); len(got) != 2 || !strings.Contains(got[0], "user_namespace") {
		t.Errorf("Undefined = %q, want the two lines", got)
	}
	if got := Denials("avc:  granted  { setenforce }\n"); got != nil {
		t.Errorf("Denials of a grant = %q", got)
	}
}

func TestType(t *testing.T) {
	for in, want := range map[string]string{"system_u:system_r:api_t:s0-s0:c0.c1023": "api_t", "kernel": "", "a:b:c": "c"} {
		if got := Type(in); got != want {
			t.Errorf("Type(%q) = %q, want %q", in, got, want)
		}
	}
}

// fcText is a file_contexts in the shape secilc writes Petrel's.
const fcText = `/.*	system_u:object_r:os_t:s0
/(local|var|opt)(/.*)?	system_u:object_r:local_t:s0
/etc(/.*)?	system_u:object_r:etc_t:s0
/usr/s?bin/(u)?mount	--	system_u:object_r:mount_exec_t:s0
/var/lib/petrel(/.*)?	system_u:object_r:private_t:s0
/var/lib/petrel/datastore(/.*)?	system_u:object_r:datastore_t:s0
/var/lib/petrel/keep(/.*)?	<<none>>
/run/api\.sock	-s	system_u:object_r:api_socket_t:s0
/usr/bin/petrel	--	system_u:object_r:agent_exec_t:s0
/usr/bin/pe.*	--	system_u:object_r:etc_t:s0
`

func TestFileContexts(t *testing.T) {
	fc, err := ParseFileContexts(strings.NewReader(fcText), "fc")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		mode fs.FileMode
		want string
	}{
		{"/", fs.ModeDir, "system_u:object_r:os_t:s0"},
		{"/usr/bin/mount", 0, "system_u:object_r:mount_exec_t:s0"},
		{"/usr/sbin/umount", 0, "system_u:object_r:mount_exec_t:s0"},
		{"/usr/bin/mount", fs.ModeSymlink, "system_u:object_r:os_t:s0"},
		{"/local", fs.ModeDir, "system_u:object_r:local_t:s0"},
		{"/local/var", fs.ModeDir, "system_u:object_r:local_t:s0"},
		{"/localx", fs.ModeDir, "system_u:object_r:os_t:s0"},
		{"/var/lib/petrel", fs.ModeDir, "system_u:object_r:private_t:s0"},
		{"/var/lib/petrel/datastore/current", fs.ModeSymlink, "system_u:object_r:datastore_t:s0"},
		{"/var/lib/petrel/keep/x", 0, ""},
		{"/run/api.sock", fs.ModeSocket, "system_u:object_r:api_socket_t:s0"},
		{"/run/api.sock", 0, "system_u:object_r:os_t:s0"},
		// An entry without regular expression characters wins over a later one with.
		{"/usr/bin/petrel", 0, "system_u:object_r:agent_exec_t:s0"},
		{"/usr/bin/perl", 0, "system_u:object_r:etc_t:s0"},
	} {
		got, ok := fc.Lookup(tt.path, tt.mode)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("Lookup(%q, %v) = %q, %v; want %q", tt.path, tt.mode, got, ok, tt.want)
		}
	}
}

func TestParseFileContextsErrors(t *testing.T) {
	_, err := ParseFileContexts(strings.NewReader("/a\n/b -x system_u:object_r:a_t:s0\n/c nocontext\n/(d system_u:object_r:a_t:s0\n"), "fc")
	if !errors.Is(err, ErrFileContexts) {
		t.Fatalf("error %v, want ErrFileContexts", err)
	}
	for _, want := range []string{"fc:1: expected REGEX [TYPE] CONTEXT, got 1 fields", `fc:2: file type "-x"`, `fc:3: context "nocontext"`, `fc:4: regular expression "/(d"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("SELINUX=enforcing\nSELINUXTYPE=petrel\n")
	f.Add("SELINUX=\nx")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseConfig(strings.NewReader(in), "f")
		if err == nil && !slices.Contains([]string{Enforcing, Permissive, Disabled}, c.Mode) {
			t.Errorf("accepted mode %q", c.Mode)
		}
	})
}

func FuzzParseFileContexts(f *testing.F) {
	f.Add(fcText, "/usr/bin/petrel")
	f.Fuzz(func(t *testing.T, in, path string) {
		fc, err := ParseFileContexts(strings.NewReader(in), "f")
		if err != nil {
			return
		}
		if ctx, ok := fc.Lookup(path, 0); ok && strings.Count(ctx, ":") < 3 {
			t.Errorf("Lookup gave %q", ctx)
		}
	})
}
