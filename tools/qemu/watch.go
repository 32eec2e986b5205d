package qemu

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/petrel-os/petrel/sources/ready"
)

// DefaultMaxBoots is how many boots (GRUB bank selections) a wait for host
// ready allows by default: a new bank that fails, the fallback to the old
// one, and one more.
const DefaultMaxBoots = 3

// ReadyUnits returns the units whose failure means that host ready cannot
// come: petrel-ready and mark-successful-boot, which it requires, and the
// targets every unit is ordered after. A unit that these require and that
// fails shows as "Dependency failed for" one of them.
func ReadyUnits() []string {
	return []string{"petrel-ready.service", "mark-successful-boot.service", "local-fs.target", "sysinit.target", "basic.target"}
}

// RequiredUnits returns the units mark-successful-boot.service requires
// (packages/host; a test keeps the two lists equal). A oneshot among them
// that fails shows as "Dependency failed for mark-successful-boot"; a
// service with Restart=always that keeps failing does not (its start job
// waits through every restart), so the watcher counts its failures.
func RequiredUnits() []string {
	return []string{"migrator.service", "apiserver.service", "storewolf.service", "early-boot-config.service", "sundog.service",
		"settings-applier.service", "containerd.service", "bootstrap-containers.service"}
}

// DefaultMaxUnitFailures is how often a required unit may fail (and be
// restarted) before the wait ends.
const DefaultMaxUnitFailures = 3

// Policy says which console lines end a wait for host ready.
type Policy struct {
	// FailedBoots is how many boots may fail and reboot (dm-verity finding
	// corruption, petrel-init giving up, GRUB failing to load a bank)
	// before the wait ends; a test of the fallback to the other bank
	// expects one. Default 0: the first failed boot ends the wait.
	FailedBoots int
	// MaxBoots is the most boots without host ready; 0 means
	// DefaultMaxBoots.
	MaxBoots int
	// ReadyUnits are the units whose failed start ends the wait; nil means
	// ReadyUnits().
	ReadyUnits []string
	// RequiredUnits are the units that ready needs started and that may
	// fail and restart; nil means RequiredUnits().
	RequiredUnits []string
	// MaxUnitFailures is how often one of RequiredUnits may fail before
	// the wait ends; 0 means DefaultMaxUnitFailures.
	MaxUnitFailures int
}

// BootError is returned when the console shows that the host can no longer
// become ready.
type BootError struct {
	// Reason says what failed, naming the unit or the cause.
	Reason string
	// Line is the console line that shows it.
	Line Line
	Tail []string
}

func (e *BootError) Error() string {
	return fmt.Sprintf("the host cannot become ready: %s (console at %.1fs: %q); last console lines:\n  %s",
		e.Reason, e.Line.At.Seconds(), e.Line.Text, strings.Join(e.Tail, "\n  "))
}

// Console lines the watcher knows. systemd prints unit status lines as
// "unit - description", shortened with "…" to the console's width (so the
// unit name may be cut), and logs the same events to the kernel log with
// the whole name; the kernel's dm-verity line names the device.
var (
	grubSelection  = regexp.MustCompile(`petrel: A prio=\S* tries=\S* ok=\S* B prio=`)
	unitFailed     = regexp.MustCompile(`(?:\[FAILED\] |systemd\[1\]: )Failed to start (\S+)`)
	dependency     = regexp.MustCompile(`(?:\[DEPEND\] |systemd\[1\]: )Dependency failed for (\S+)`)
	unitResult     = regexp.MustCompile(`systemd\[1\]: (\S+): Failed with result '([^']*)'`)
	emergency      = regexp.MustCompile(`You are in emergency mode|Reached target emergency\.target|Started emergency\.service`)
	kernelPanic    = regexp.MustCompile(`Kernel panic - not syncing: .*`)
	verityCorrupt  = regexp.MustCompile(`device-mapper: verity: \S+: (data|metadata) block \d+ is corrupted`)
	initFatal      = regexp.MustCompile(`petrel-init: fatal: .*`)
	grubBankFailed = regexp.MustCompile(`petrel: boot of bank \S+ failed`)
)

// Watcher follows the console of one or more boots and tells when the host
// can no longer become ready.
type Watcher struct {
	p          Policy
	boots      int    // boots since the last host ready
	failed     int    // failed boots so far
	failedBoot int    // the boot (count) last counted as failed
	lastFailed string // the last "[FAILED] Failed to start" line
	// unitFailures counts "Failed with result" lines of required units
	// since the last host ready.
	unitFailures map[string]int
}

// NewWatcher returns a watcher for policy p.
func NewWatcher(p Policy) *Watcher {
	if p.MaxBoots <= 0 {
		p.MaxBoots = DefaultMaxBoots
	}
	if p.ReadyUnits == nil {
		p.ReadyUnits = ReadyUnits()
	}
	if p.RequiredUnits == nil {
		p.RequiredUnits = RequiredUnits()
	}
	if p.MaxUnitFailures <= 0 {
		p.MaxUnitFailures = DefaultMaxUnitFailures
	}
	return &Watcher{p: p, failedBoot: -1, unitFailures: map[string]int{}}
}

// Check looks at the next console line. It returns a *BootError when the
// line shows that the host cannot become ready, nil otherwise.
func (w *Watcher) Check(l Line) *BootError {
	t := l.Text
	fail := func(format string, args ...any) *BootError {
		return &BootError{Reason: fmt.Sprintf(format, args...), Line: l}
	}
	switch {
	case strings.Contains(t, ready.Marker):
		w.boots = 0
		clear(w.unitFailures)
	case grubSelection.MatchString(t):
		w.boots++
		clear(w.unitFailures)
		if w.boots > w.p.MaxBoots {
			return fail("boot loop: the boot loader chose a bank %d times without host ready", w.boots)
		}
	case unitFailed.MatchString(t):
		w.lastFailed = strings.TrimSpace(t)
		if unit, ok := w.readyUnit(unitFailed.FindStringSubmatch(t)[1]); ok {
			return fail("%s failed to start", unit)
		}
	case dependency.MatchString(t):
		if unit, ok := w.readyUnit(dependency.FindStringSubmatch(t)[1]); ok {
			cause := "no failed unit shown"
			if w.lastFailed != "" {
				cause = "last failure: " + w.lastFailed
			}
			return fail("%s cannot start: a unit it requires failed (%s)", unit, cause)
		}
	case unitResult.MatchString(t):
		m := unitResult.FindStringSubmatch(t)
		if !slices.Contains(w.p.RequiredUnits, m[1]) {
			return nil
		}
		if w.unitFailures[m[1]]++; w.unitFailures[m[1]] >= w.p.MaxUnitFailures {
			return fail("%s, which mark-successful-boot requires, failed %d times (last result %q)", m[1], w.unitFailures[m[1]], m[2])
		}
	case emergency.MatchString(t):
		return fail("systemd entered emergency mode")
	case kernelPanic.MatchString(t):
		return fail("kernel panic: %s", kernelPanic.FindString(t))
	default:
		var cause string
		switch {
		case verityCorrupt.MatchString(t):
			cause = "dm-verity found the root corrupted: " + verityCorrupt.FindString(t)
		case initFatal.MatchString(t):
			cause = "the initramfs gave up: " + initFatal.FindString(t)
		case grubBankFailed.MatchString(t):
			cause = "the boot loader could not load the bank: " + grubBankFailed.FindString(t)
		default:
			return nil
		}
		if w.failedBoot == w.boots {
			return nil // this boot was counted already
		}
		if w.failed >= w.p.FailedBoots {
			return fail("%s", cause)
		}
		w.failed++
		w.failedBoot = w.boots
	}
	return nil
}

// readyUnit returns the ready unit that name, from a status line, is; name
// may be cut short by systemd's "…" (at least 5 characters must be left).
func (w *Watcher) readyUnit(name string) (string, bool) {
	if slices.Contains(w.p.ReadyUnits, name) {
		return name, true
	}
	prefix, _, cut := strings.Cut(name, "…")
	if !cut || len(prefix) < 5 {
		return "", false
	}
	for _, u := range w.p.ReadyUnits {
		if strings.HasPrefix(u, prefix) {
			return u, true
		}
	}
	return "", false
}

// FailedBoots is the number of failed boots seen so far.
func (w *Watcher) FailedBoots() int { return w.failed }

// WaitReady waits for the host ready line (ready.Marker), from console line
// index from on, like WaitFor. It ends early with a *BootError when the
// console shows, under p, that the host can no longer become ready, so
// that a broken boot fails in seconds instead of at timeout.
func (vm *VM) WaitReady(ctx context.Context, from int, timeout time.Duration, p Policy) (Line, int, error) {
	w := NewWatcher(p)
	l, i, err := vm.wait(ctx, from, timeout, regexp.QuoteMeta(ready.Marker), func(l Line) (bool, error) {
		if strings.Contains(l.Text, ready.Marker) {
			return true, nil
		}
		if err := w.Check(l); err != nil {
			return false, err
		}
		return false, nil
	})
	var be *BootError
	if errors.As(err, &be) {
		// A failed unit's own messages (the bad setting it names) reach
		// the console through journald, which may write them after
		// systemd's status lines: read on for a moment before the tail.
		_ = vm.Wait(ctx, failureGrace)
		be.Tail = vm.around(i, 20, 40)
	}
	return l, i, err
}

// around returns up to before console lines before line i, line i, and up
// to after lines since.
func (vm *VM) around(i, before, after int) []string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	var out []string
	for _, l := range vm.lines[max(0, i-before):min(len(vm.lines), i+1+after)] {
		out = append(out, l.Text)
	}
	return out
}

// failureGrace is how long WaitReady reads on after a line that shows
// that the host cannot become ready.
const failureGrace = 2 * time.Second
