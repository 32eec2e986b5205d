package render

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// shippedTemplate parses the shipped template name (templates/).
func shippedTemplate(t *testing.T, name string) *Template {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("templates", name))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := ParseTemplate(name, src)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// renderTemplate renders the shipped template name with settings.
func renderTemplate(t *testing.T, name string, settings map[string]any) string {
	t.Helper()
	out, err := shippedTemplate(t, name).Execute(map[string]any{"settings": settings})
	if err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	return string(out)
}

// TestModuleTemplates renders modprobe-conf and modules-load for the
// combinations of allowed and autoload (each unset, true or false).
func TestModuleTemplates(t *testing.T) {
	t.Parallel()
	const modprobeHead = "# Kernel modules settings.kernel.modules does not allow (allowed = false):\n" +
		"# not loaded for an alias (blacklist), and loading one by name runs its\n" +
		"# install command instead, which fails: modprobe refuses the module.\n"
	const loadHead = "# Kernel modules settings.kernel.modules loads at boot (autoload = true,\n" +
		"# and not allowed = false).\n"
	mod := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name           string
		settings       map[string]any
		modprobe, load string // after the comment lines
	}{
		{"no kernel settings", map[string]any{}, "", ""},
		{"no modules", map[string]any{"kernel": map[string]any{"lockdown": "integrity"}}, "", ""},
		{"every combination", map[string]any{"kernel": map[string]any{"modules": map[string]any{
			"sctp":         mod("allowed", false),
			"udf":          mod("allowed", false, "autoload", true), // not allowed wins
			"dummy":        mod("autoload", true),
			"br_netfilter": mod("allowed", true, "autoload", true),
			"tun":          mod("allowed", true),
			"veth":         mod("autoload", false),
			"nbd":          mod(),
		}}},
			"blacklist sctp\ninstall sctp /bin/false\nblacklist udf\ninstall udf /bin/false\n",
			"br_netfilter\ndummy\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := renderTemplate(t, "modprobe-conf", tc.settings); got != modprobeHead+tc.modprobe {
				t.Errorf("modprobe-conf =\n%s\nwant\n%s", got, modprobeHead+tc.modprobe)
			}
			if got := renderTemplate(t, "modules-load", tc.settings); got != loadHead+tc.load {
				t.Errorf("modules-load =\n%s\nwant\n%s", got, loadHead+tc.load)
			}
			modules, _ := lookup(map[string]any{"settings": tc.settings}, ModulesKey).(map[string]any)
			want := strings.Fields(tc.load)
			if got := autoloadModules(modules); !reflect.DeepEqual(got, want) && len(got)+len(want) > 0 {
				t.Errorf("autoloadModules = %q; want what modules-load names, %q", got, want)
			}
		})
	}
}

// fakeModprobe writes a modprobe that "loads" a module by creating
// sys/module/NAME (with '-' as '_'), refuses the module "broken" as
// modprobe does one it cannot find, and "loads" the module "ghost"
// without the kernel listing it. It logs each call to calls.
func fakeModprobe(t *testing.T) (modprobe, sys, calls string) {
	t.Helper()
	dir := t.TempDir()
	sys, calls = filepath.Join(dir, "sys"), filepath.Join(dir, "calls")
	modprobe = filepath.Join(dir, "modprobe")
	script := `#!/bin/sh
echo "$@" >> ` + calls + `
[ "$1" = -- ] || { echo "modprobe: expected --" >&2; exit 2; }
case "$2" in
broken) echo "modprobe: FATAL: Module broken not found in directory /lib/modules/6.1.0" >&2; exit 1 ;;
ghost) exit 0 ;;
esac
mkdir -p ` + sys + `/module/$(echo "$2" | tr - _)
`
	if err := os.WriteFile(modprobe, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return modprobe, sys, calls
}

func TestLoadModules(t *testing.T) {
	t.Parallel()
	on := map[string]any{"autoload": true}
	for _, tc := range []struct {
		name    string
		modules map[string]any
		calls   string
		out     string
		failed  []string
		log     []string
	}{
		{"loads autoload modules", map[string]any{"dummy": on, "ip-vs": on, "tun": map[string]any{"allowed": true}},
			"-- dummy\n-- ip-vs\n", "petrel: kernel module dummy loaded\npetrel: kernel module ip-vs loaded\n", nil, nil},
		{"not allowed is not loaded", map[string]any{"sctp": map[string]any{"autoload": true, "allowed": false}}, "", "", nil, nil},
		{"modprobe fails, the others load", map[string]any{"broken": on, "dummy": on},
			"-- broken\n-- dummy\n", "petrel: kernel module dummy loaded\n", []string{"broken"},
			[]string{`level=WARN msg="cannot load kernel module; the others are still loaded" module=broken`, "Module broken not found"}},
		{"not listed after modprobe", map[string]any{"ghost": on}, "-- ghost\n", "", []string{"ghost"},
			[]string{"modprobe succeeded but the kernel does not list it", "module/ghost: no such file or directory"}},
		{"name refused before modprobe", map[string]any{"../x": on, "a b": on}, "", "", []string{"../x", "a b"},
			[]string{`load kernel module \"a b\": not a module name`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			modprobe, sys, calls := fakeModprobe(t)
			var out, logs bytes.Buffer
			l := Loader{Modprobe: modprobe, Sys: sys}
			failed := l.LoadModules(context.Background(), tc.modules, &out, slog.New(slog.NewTextHandler(&logs, nil)))
			if got, _ := os.ReadFile(calls); string(got) != tc.calls {
				t.Errorf("modprobe calls %q, want %q", got, tc.calls)
			}
			checkOutcome(t, failed, tc.failed, out.String(), tc.out, logs.String(), tc.log)
		})
	}
}

// TestModprobeReadsRenderedConf gives the rendered modprobe-conf to the
// build machine's modprobe (kmod, in the SDK): it reads both lines, and a
// load of a module that is not allowed resolves to the install command,
// not to the module (--dry-run prints what it would do). On a Petrel
// host the command fails, whether or not a shell is there to run it, so
// modprobe refuses the module.
func TestModprobeReadsRenderedConf(t *testing.T) {
	t.Parallel()
	conf := filepath.Join(t.TempDir(), "50-petrel-settings.conf")
	rendered := renderTemplate(t, "modprobe-conf", map[string]any{"kernel": map[string]any{"modules": map[string]any{
		"sctp":  map[string]any{"allowed": false},
		"dummy": map[string]any{"autoload": true},
	}}})
	if err := os.WriteFile(conf, []byte(rendered), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("modprobe", "--showconfig", "--config", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("modprobe --showconfig: %v: %s", err, out)
	}
	for _, want := range []string{"\nblacklist sctp\n", "\ninstall sctp /bin/false\n"} {
		if !strings.Contains("\n"+string(out), want) {
			t.Errorf("modprobe --showconfig lacks %q:\n%s", strings.TrimSpace(want), out)
		}
	}
	if strings.Contains(string(out), "dummy") {
		t.Errorf("modprobe --showconfig names dummy, which is allowed:\n%s", out)
	}
	out, err = exec.Command("modprobe", "--dry-run", "--verbose", "--config", conf, "sctp").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "install /bin/false" {
		t.Errorf("modprobe --dry-run sctp = %v %q; want it to run the install command only", err, out)
	}
}
