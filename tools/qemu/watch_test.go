package qemu

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
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
