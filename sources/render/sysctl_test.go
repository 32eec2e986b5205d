package render

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSysctlPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ key, want string }{
		{"vm.max_map_count", "vm/max_map_count"},
		{"net.ipv4.ip_forward", "net/ipv4/ip_forward"},
		{"kernel.pid_max", "kernel/pid_max"},
		// sysctl.d(5): with a '/', the key is a path and its dots stay.
		{"net/ipv4/conf/eth0.100/rp_filter", "net/ipv4/conf/eth0.100/rp_filter"},
		{"", ""},
		{"..", ""},
		{"vm..max_map_count", ""},
		{"net/../../etc/passwd", ""},
		{"/etc/passwd", ""},
		{"../etc/passwd", ""},
		{"vm/./max_map_count", ""},
		{"vm.", ""},
		{"net.ipv4.conf.*.rp_filter", ""},
		{`net\ipv4`, ""},
	} {
		t.Run(tc.key, func(t *testing.T) {
			t.Parallel()
			got, err := sysctlPath(tc.key)
			if tc.want == "" {
				if !errors.Is(err, errSysctlKey) {
					t.Fatalf("sysctlPath(%q) = %q, %v; want errSysctlKey", tc.key, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("sysctlPath(%q) = %q, %v; want %q", tc.key, got, err, tc.want)
			}
		})
	}
}

// fakeProc makes a procfs directory with the given files under sys/ and a
// file outside it that no key may reach.
func fakeProc(t *testing.T, files map[string]string) string {
	t.Helper()
	proc := t.TempDir()
	for p, content := range files {
		path := filepath.Join(proc, "sys", p)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(proc, "outside"), []byte("untouched\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return proc
}

func TestSetSysctls(t *testing.T) {
	t.Parallel()
	initial := map[string]string{
		"vm/max_map_count":                 "65530\n",
		"net/ipv4/ip_forward":              "0\n",
		"net/ipv4/tcp_rmem":                "4096\t131072\t6291456\n",
		"net/ipv4/conf/eth0.100/rp_filter": "2\n",
	}
	for _, tc := range []struct {
		name    string
		sysctls map[string]any
		files   map[string]string // expected content of changed files under sys/
		out     string
		failed  []string
		log     []string // substrings of the log
	}{
		{
			name:    "written and read back",
			sysctls: map[string]any{"vm.max_map_count": "262144", "net.ipv4.tcp_rmem": "4096 87380 6291456"},
			files:   map[string]string{"vm/max_map_count": "262144", "net/ipv4/tcp_rmem": "4096 87380 6291456"},
			out:     "petrel: sysctl net.ipv4.tcp_rmem = 4096 87380 6291456\npetrel: sysctl vm.max_map_count = 262144\n",
		},
		{
			name:    "slash form keeps dots",
			sysctls: map[string]any{"net/ipv4/conf/eth0.100/rp_filter": "1"},
			files:   map[string]string{"net/ipv4/conf/eth0.100/rp_filter": "1"},
			out:     "petrel: sysctl net/ipv4/conf/eth0.100/rp_filter = 1\n",
		},
		{
			name:    "key the kernel lacks",
			sysctls: map[string]any{"vm.no_such_knob": "1", "net.ipv4.ip_forward": "1"},
			files:   map[string]string{"net/ipv4/ip_forward": "1"},
			out:     "petrel: sysctl net.ipv4.ip_forward = 1\n",
			failed:  []string{"vm.no_such_knob"},
			log: []string{`level=WARN msg="cannot set sysctl; the others are still applied" key=vm.no_such_knob`,
				"vm/no_such_knob: no such file or directory"},
		},
		{
			// A directory refuses the write as the kernel refuses a bad
			// value: an error from the write path, even for root.
			name:    "unwritable value",
			sysctls: map[string]any{"net.ipv4": "1", "vm.max_map_count": "300000"},
			files:   map[string]string{"vm/max_map_count": "300000"},
			out:     "petrel: sysctl vm.max_map_count = 300000\n",
			failed:  []string{"net.ipv4"},
			log:     []string{"key=net.ipv4", "net/ipv4: is a directory"},
		},
		{
			name:    "key escaping /proc/sys",
			sysctls: map[string]any{"../outside": "pwned", "../../outside": "pwned", "vm.max_map_count": "1"},
			files:   map[string]string{"vm/max_map_count": "1"},
			out:     "petrel: sysctl vm.max_map_count = 1\n",
			failed:  []string{"../../outside", "../outside"},
			log:     []string{`key=../outside error="set sysctl: not a sysctl key: \"../outside\" (empty, . or .. in`},
		},
		{
			name:    "value not a string",
			sysctls: map[string]any{"vm.max_map_count": 5.0},
			failed:  []string{"vm.max_map_count"},
			log:     []string{"value 5 is a float64, not a string"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			proc := fakeProc(t, initial)
			var out, logs bytes.Buffer
			failed := SetSysctls(proc, tc.sysctls, &out, slog.New(slog.NewTextHandler(&logs, nil)))
			checkOutcome(t, failed, tc.failed, out.String(), tc.out, logs.String(), tc.log)
			for p, was := range initial {
				want, changed := tc.files[p]
				if !changed {
					want = was
				}
				if got, _ := os.ReadFile(filepath.Join(proc, "sys", p)); string(got) != want {
					t.Errorf("sys/%s = %q, want %q", p, got, want)
				}
			}
			if got, _ := os.ReadFile(filepath.Join(proc, "outside")); string(got) != "untouched\n" {
				t.Errorf("a key escaped /proc/sys: outside = %q", got)
			}
			if _, err := os.Stat(filepath.Join(proc, "sys", "vm", "no_such_knob")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a key the kernel lacks was created: %v", err)
			}
		})
	}
}

// checkOutcome compares what SetSysctls or LoadModules returned and
// printed with what a case wants; log lists substrings of the log.
func checkOutcome(t *testing.T, failed, wantFailed []string, out, wantOut, logs string, log []string) {
	t.Helper()
	if !reflect.DeepEqual(failed, wantFailed) {
		t.Errorf("failed = %q, want %q", failed, wantFailed)
	}
	if out != wantOut {
		t.Errorf("out = %q, want %q", out, wantOut)
	}
	for _, l := range log {
		if !strings.Contains(logs, l) {
			t.Errorf("log lacks %q:\n%s", l, logs)
		}
	}
}
