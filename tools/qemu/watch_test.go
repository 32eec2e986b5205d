package qemu

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/ready"
)

// readTranscript reads a console log as Options.ConsoleLog writes it.
func readTranscript(t *testing.T, name string) []Line {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "console", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	re := regexp.MustCompile(`^\[\s*([0-9.]+)\] (.*)$`)
	var lines []Line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("%s: line %q is not a console log line", name, sc.Text())
		}
		secs, _ := strconv.ParseFloat(m[1], 64)
		lines = append(lines, Line{At: time.Duration(secs * float64(time.Second)), Text: m[2]})
	}
	return lines
}

// TestWatcher replays recorded console transcripts: real boots (host
// ready; an API reboot and the next boot; a fallback from a bank whose
// root dm-verity refuses; a failed mark-successful-boot) and short ones
// built from real lines (a kernel panic, a boot loop, the initramfs giving
// up).
func TestWatcher(t *testing.T) {
	for _, tt := range []struct {
		file   string
		policy Policy
		// want is the reason of the BootError, "" for host ready.
		want string
		// wantLine is a part of the line the watcher stops at.
		wantLine string
	}{
		{"ready.log", Policy{}, "", ready.Marker},
		{"api-reboot.log", Policy{}, "", ready.Marker},
		{"fallback.log", Policy{FailedBoots: 1}, "", "bank A"},
		{"fallback.log", Policy{}, "dm-verity found the root corrupted: device-mapper: verity: ", "is corrupted"},
		{"fallback.log", Policy{FailedBoots: 1, MaxBoots: 1}, "boot loop: the boot loader chose a bank 2 times without host ready", "petrel: A prio=1 tries=1 ok=0"},
		// systemd cut the unit names of these status lines to fit the console.
		{"mark-failed.log", Policy{}, "mark-successful-boot.service failed to start", "[FAILED] Failed to start mark-successful-boo…oot"},
		{"mark-failed.log", Policy{ReadyUnits: []string{"petrel-ready.service"}},
			"petrel-ready.service cannot start: a unit it requires failed (last failure: [FAILED] Failed to start mark-successful-boo…oot", "[DEPEND] Dependency failed for petrel-ready.…"},
		// The whole names, from systemd's kernel log lines.
		{"mark-failed-kmsg.log", Policy{}, "mark-successful-boot.service failed to start", "systemd[1]: Failed to start mark-successful-boot.service"},
		{"other-unit-failed.log", Policy{}, "", ready.Marker},
		{"kernel-panic.log", Policy{}, "kernel panic: Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)", "Kernel panic"},
		{"boot-loop.log", Policy{FailedBoots: 10}, "boot loop: the boot loader chose a bank 4 times without host ready", "petrel: A prio="},
		{"boot-loop.log", Policy{}, "the boot loader could not load the bank: petrel: boot of bank a failed", "petrel: boot of bank a failed"},
		{"init-fatal.log", Policy{}, "the initramfs gave up: petrel-init: fatal: mount PARTLABEL=PETREL-PRIVATE", "petrel-init: fatal"},
	} {
		t.Run(tt.file+"/"+strings.ReplaceAll(tt.want, " ", "_"), func(t *testing.T) {
			w := NewWatcher(tt.policy)
			readies := 0
			for _, l := range readTranscript(t, tt.file) {
				err := w.Check(l)
				if err == nil && !strings.Contains(l.Text, ready.Marker) {
					continue
				}
				if err == nil {
					if tt.want != "" {
						t.Fatalf("reached %q, want a BootError %q", l.Text, tt.want)
					}
					if !strings.Contains(l.Text, tt.wantLine) {
						t.Errorf("reached %q, want a ready line with %q", l.Text, tt.wantLine)
					}
					if readies++; tt.file != "api-reboot.log" {
						return
					}
					continue // the transcript goes on with the next boot
				}
				if tt.want == "" || !strings.HasPrefix(err.Reason, tt.want) {
					t.Fatalf("BootError at %q: %q, want %q", l.Text, err.Reason, tt.want)
				}
				if !strings.Contains(err.Line.Text, tt.wantLine) {
					t.Errorf("BootError at %q, want the line with %q", err.Line.Text, tt.wantLine)
				}
				return
			}
			if tt.want != "" {
				t.Fatalf("no BootError, want %q", tt.want)
			}
			if readies < 2 {
				t.Fatalf("%d ready lines, want the two boots of the transcript", readies)
			}
		})
	}
}

// TestWatcherRestartingUnit feeds the kernel-log lines of a required
// service with Restart=always failing again and again: its start job
// waits through the restarts, so no "Dependency failed" line ever comes,
// and the watcher must count the failures. Other units' failures and a
// new boot do not count.
func TestWatcherRestartingUnit(t *testing.T) {
	failed := func(unit string) Line {
		return Line{Text: "[   20.1] systemd[1]: " + unit + ": Failed with result 'exit-code'."}
	}
	for _, tt := range []struct {
		name  string
		lines []Line
		want  string
	}{
		{"three failures", []Line{failed("apiserver.service"), failed("apiserver.service"), failed("apiserver.service")},
			`apiserver.service, which mark-successful-boot requires, failed 3 times (last result "exit-code")`},
		{"two failures", []Line{failed("apiserver.service"), failed("apiserver.service")}, ""},
		{"other unit", []Line{failed("systemd-timesyncd.service"), failed("systemd-timesyncd.service"), failed("systemd-timesyncd.service")}, ""},
		{"new boot between", []Line{failed("containerd.service"), failed("containerd.service"),
			{Text: "petrel: A prio=1 tries=0 ok=1 B prio=0 tries=0 ok=0"}, failed("containerd.service")}, ""},
		{"ready between", []Line{failed("containerd.service"), failed("containerd.service"),
			{Text: ready.Marker + ": Petrel OS"}, failed("containerd.service")}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWatcher(Policy{})
			var got string
			for _, l := range tt.lines {
				if err := w.Check(l); err != nil {
					got = err.Reason
					break
				}
			}
			if got != tt.want {
				t.Errorf("BootError %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRequiredUnitsShipped checks RequiredUnits against the Requires= of
// the shipped mark-successful-boot.service.
func TestRequiredUnitsShipped(t *testing.T) {
	data, err := os.ReadFile("../../packages/host/mark-successful-boot.service")
	if err != nil {
		t.Fatal(err)
	}
	var requires []string
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Requires="); ok {
			requires = append(requires, strings.Fields(v)...)
		}
	}
	want := slices.Sorted(slices.Values(requires))
	got := slices.Sorted(slices.Values(RequiredUnits()))
	if !slices.Equal(got, want) {
		t.Errorf("RequiredUnits() = %q, mark-successful-boot.service requires %q", got, want)
	}
}

// TestWaitReadyReadsOn: the message of the unit that failed, which
// journald writes to the console after systemd's status lines, is in the
// BootError's tail.
func TestWaitReadyReadsOn(t *testing.T) {
	t.Parallel()
	vm := &VM{start: time.Now(), done: make(chan struct{}), notify: make(chan struct{})}
	late := `early-boot-config[199]: early-boot-config: apply user data: settings.network.hostname: expected a host name`
	go func() {
		vm.add("[FAILED] Failed to start early-boot-config.s…ware guestinfo) once per instance.")
		vm.add("[DEPEND] Dependency failed for mark-successf…oot of the active bank successful.")
		time.Sleep(failureGrace / 4)
		vm.add(late)
		for i := range 30 { // later lines do not push it out of the tail
			vm.add(fmt.Sprintf("ata%d: SATA link down", i))
		}
	}()
	_, _, err := vm.WaitReady(t.Context(), 0, time.Minute, Policy{})
	var be *BootError
	if !errors.As(err, &be) || !strings.Contains(be.Reason, "mark-successful-boot.service cannot start") {
		t.Fatalf("WaitReady = %v, want a BootError for mark-successful-boot", err)
	}
	if !slices.Contains(be.Tail, late) {
		t.Errorf("tail %q lacks the failed unit's later line %q", be.Tail, late)
	}
}
