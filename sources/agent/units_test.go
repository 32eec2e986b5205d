package agent

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestShippedCommandLines finds every command line that the unit files
// under packages/ and the shipped settings defaults give a Petrel program
// and checks that it parses: run with --help appended, the program must
// exit 0 and show the help of the subcommand the line names.
func TestShippedCommandLines(t *testing.T) {
	t.Parallel()
	mains := Agents()
	var files []string
	for _, pattern := range []string{"../../packages/*/*.service", "../settings/defaults/*.toml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	// A program path, then its arguments up to the end of the line or of
	// a TOML string.
	re := regexp.MustCompile(`/usr/bin/([a-z-]+)((?: [^"\n]*)?)`)
	checked := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			prog, args := m[1], strings.Fields(m[2])
			main, ok := mains[prog]
			if !ok {
				continue
			}
			checked++
			var out, errb bytes.Buffer
			code := main(context.Background(), append(args, "--help"), &out, &errb)
			// The command path is the program and the subcommand words
			// (leading arguments that are neither flags nor paths).
			path := []string{prog}
			for _, a := range args {
				if strings.HasPrefix(a, "-") || strings.HasPrefix(a, "/") {
					break
				}
				path = append(path, a)
			}
			usage := "Usage:\n  " + strings.Join(path, " ") + " "
			if code != 0 || !strings.Contains(out.String(), usage) {
				t.Errorf("%s: %s %q: exit %d, stderr %q, help %q; want exit 0 and help starting %q",
					file, prog, args, code, errb.String(), out.String(), usage)
			}
		}
	}
	if checked == 0 {
		t.Errorf("no command line of a Petrel program found in %d files", len(files))
	}
}

// TestBootChainCPUWeight checks the CPU weights that the shipped units
// have while the system starts (StartupCPUWeight= in [Service]): every
// unit of the agents' chain that host ready waits for, and containerd,
// which multi-user.target waits for, gets more than a default unit's
// share; timesyncd, which nothing before host ready waits for, gets less.
// Without them, under software emulation, the seccomp set-up of networkd
// and timesyncd, udev's coldplug and containerd's own start share both
// vCPUs with the agents, and host ready comes seconds later
// (docs/performance.md).
func TestBootChainCPUWeight(t *testing.T) {
	t.Parallel()
	const defaultWeight = 100 // systemd.resource-control(5)
	type want struct {
		file  string
		above bool // over the default weight, or under it
	}
	units := map[string]want{
		"containerd.service":        {"../../packages/host/containerd-petrel.conf", true},
		"systemd-timesyncd.service": {"../../packages/host/timesyncd-petrel.conf", false},
	}
	for _, name := range bootOrder() {
		m, err := filepath.Glob("../../packages/*/" + name)
		if err != nil || len(m) != 1 {
			t.Fatalf("unit file of %s under packages/: %v, %v; want exactly one", name, m, err)
		}
		units[name] = want{m[0], true}
	}
	for name, w := range units {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(w.file)
			if err != nil {
				t.Fatal(err)
			}
			weight, section := "", ""
			for _, line := range strings.Split(string(data), "\n") {
				line = strings.TrimSpace(line)
				if strings.HasPrefix(line, "[") {
					section = line
					continue
				}
				if key, val, ok := strings.Cut(line, "="); ok && key == "StartupCPUWeight" && section == "[Service]" {
					weight = val
				}
			}
			n, err := strconv.Atoi(weight)
			switch {
			case err != nil:
				t.Errorf("%s: StartupCPUWeight=%q in [Service]; want a number", w.file, weight)
			case w.above && n <= defaultWeight:
				t.Errorf("%s: StartupCPUWeight=%d; want more than the default %d", w.file, n, defaultWeight)
			case !w.above && n >= defaultWeight:
				t.Errorf("%s: StartupCPUWeight=%d; want less than the default %d", w.file, n, defaultWeight)
			}
		})
	}
}
