// Package qemu runs Petrel disk images in QEMU for `buildctl boot` and the
// end-to-end tests: UEFI (OVMF) or BIOS (SeaBIOS) firmware, an optional
// config drive with user data, the serial console captured to a writer, a
// log file and an in-memory ring of recent lines that callers wait on, a
// watcher that tells from the console when a boot can no longer reach host
// ready, the guest's API socket served on this machine through the API
// bridge (package bridge), and a user network restricted to this machine.
package qemu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/petrel-os/petrel/sources/bridge"
	"github.com/petrel-os/petrel/sources/outfile"
)

// Firmware selects how the machine boots.
type Firmware int

// Firmware kinds.
const (
	UEFI Firmware = iota
	BIOS
)

func (f Firmware) String() string {
	if f == BIOS {
		return "bios"
	}
	return "uefi"
}

// Well-known firmware files from Debian's ovmf package.
const (
	OVMFCode = "/usr/share/OVMF/OVMF_CODE.fd"
	OVMFVars = "/usr/share/OVMF/OVMF_VARS.fd"
)

// Options describe one VM.
type Options struct {
	// Image is the raw disk image to boot.
	Image string
	// DataImage is an optional second disk (the split plan's data disk).
	DataImage string
	// Firmware is UEFI (default) or BIOS.
	Firmware Firmware
	// ConfigDrive is an optional extra disk image (user data).
	ConfigDrive string
	// Snapshot discards writes to Image when true; false writes through so
	// that boot state persists across boots.
	Snapshot bool
	// MemoryMiB defaults to 1024.
	MemoryMiB int
	// CPUs is the number of virtual CPUs; default 2. Under software
	// emulation QEMU runs each on a host thread of its own.
	CPUs int
	// ConsoleLog, if set, receives every console line.
	ConsoleLog string
	// Console, if set, receives every console line as it arrives.
	Console io.Writer
	// WorkDir holds the writable OVMF variable store; default a temp dir.
	WorkDir string
	// KVM selects hardware acceleration: nil means detect.
	KVM *bool
	// Binary defaults to qemu-system-x86_64.
	Binary string
	// Reboot lets the guest reboot (A/B fallback tests, a reboot through
	// the API) as a power cycle: a new QEMU process with the same disks,
	// firmware variables, console and API socket (see restart.go). With
	// Snapshot, the guest's writes persist across its reboots in overlays
	// that are discarded when the VM ends. By default a guest reboot ends
	// the VM.
	Reboot bool
	// APISocket, if set, is a path where this machine serves the guest's
	// API socket for as long as QEMU runs: a virtio-serial port named
	// bridge.PortName carries it to the guest's api-bridge agent (images
	// with the debug-api feature). Use it with apiclient --socket-path.
	APISocket string
	// APIWait bounds how long a connection to APISocket waits for the
	// guest to be ready (booting or rebooting); default 10 minutes.
	APIWait time.Duration
	// GuestForwards and HostForwards are the only ways through the guest's
	// restricted network (see network.go).
	GuestForwards []GuestForward
	HostForwards  []HostForward
	// Network is the guest's network; default GuestNetwork. EC2Network
	// puts the EC2 metadata address in it.
	Network string
	// SystemVendor, if set, is the SMBIOS system manufacturer the guest
	// sees (/sys/class/dmi/id/sys_vendor), e.g. "Amazon EC2".
	SystemVendor string
	// Logger receives the API bridge's log and the VM's restarts; default
	// none.
	Logger *slog.Logger

	// diskFormat is the format of Image and DataImage: the qcow2 of the
	// reboot overlays, or raw by default.
	diskFormat string
}

// apiPortFD is the file descriptor number QEMU gets the host end of the
// API bridge's channel on (the first of exec.Cmd.ExtraFiles); the QMP
// monitor's comes after it.
const apiPortFD = 3

// qmpFD is the file descriptor number of the QMP monitor's channel.
func qmpFD(opts Options) int {
	if opts.APISocket != "" {
		return apiPortFD + 1
	}
	return apiPortFD
}

// VM is a running virtual machine: one QEMU process, or one after another
// when the guest reboots (Options.Reboot). It is safe for concurrent use.
type VM struct {
	opts    Options
	bin     string
	args    []string
	start   time.Time
	done    chan struct{}
	waitErr error
	logger  *slog.Logger

	mu      sync.Mutex
	cmd     *exec.Cmd // the current process
	stopped bool
	lines   []Line
	notify  chan struct{}
	log     *os.File
	tmp     string
	// overlayDir holds the reboot overlays of a snapshot (restart.go).
	overlayDir string

	port    *port
	api     *bridge.Link
	apiStop context.CancelFunc
	apiDone sync.WaitGroup
}

// Line is one console line with the time since QEMU started.
type Line struct {
	At   time.Duration
	Text string
}

// ErrExited is returned by WaitFor when QEMU exits before the pattern shows.
var ErrExited = errors.New("qemu exited")

// TimeoutError is returned by WaitFor when the pattern does not show in time.
// Its message carries the last console lines.
type TimeoutError struct {
	Pattern string
	After   time.Duration
	Tail    []string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("console did not show %q within %s; last console lines:\n  %s",
		e.Pattern, e.After.Round(time.Second), strings.Join(e.Tail, "\n  "))
}

// KVMUsable reports whether /dev/kvm can run stock guests: it must exist and
// the CPU must expose VMX or SVM (the PVM flavour of KVM on some cloud
// machines cannot run stock kernels or OVMF).
func KVMUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		return false
	}
	cpu, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	return regexp.MustCompile(`(?m)^flags\s*:.*\b(vmx|svm)\b`).Match(cpu)
}

// Args returns the QEMU command line for opts (without the binary). It
// fails on a forward that would open the guest's network past loopback.
func Args(opts Options, varsPath string, kvm bool) ([]string, error) {
	netdev, err := netdevArg(opts)
	if err != nil {
		return nil, fmt.Errorf("qemu network: %w", err)
	}
	mem := opts.MemoryMiB
	if mem == 0 {
		mem = 1024
	}
	cpus := opts.CPUs
	if cpus == 0 {
		cpus = 2
	}
	args := []string{
		"-m", fmt.Sprint(mem), "-smp", fmt.Sprint(cpus),
		"-nodefaults", "-no-user-config", "-display", "none",
		"-serial", "stdio",
		"-machine", "q35",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=n0",
		"-device", "virtio-rng-pci",
	}
	// A guest reset ends the process; with Options.Reboot the VM starts
	// the next one.
	args = append(args, "-no-reboot")
	if kvm {
		args = append(args, "-accel", "kvm", "-cpu", "host")
	} else {
		args = append(args, "-accel", "tcg,thread=multi")
	}
	if opts.Firmware == UEFI {
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file="+OVMFCode,
			"-drive", "if=pflash,format=raw,file="+varsPath)
	}
	snap := ""
	if opts.Snapshot {
		snap = ",snapshot=on"
	}
	format := opts.diskFormat
	if format == "" {
		format = "raw"
	}
	args = append(args, "-drive", "file="+opts.Image+",format="+format+",if=virtio"+snap)
	if opts.DataImage != "" {
		args = append(args, "-drive", "file="+opts.DataImage+",format="+format+",if=virtio"+snap)
	}
	if opts.ConfigDrive != "" {
		args = append(args, "-drive", "file="+opts.ConfigDrive+",format=raw,if=virtio,readonly=on")
	}
	if opts.SystemVendor != "" {
		if strings.ContainsAny(opts.SystemVendor, ",=\n") {
			return nil, fmt.Errorf("qemu system vendor %q: commas, '=' and line breaks are not allowed", opts.SystemVendor)
		}
		args = append(args, "-smbios", "type=1,manufacturer="+opts.SystemVendor)
	}
	if opts.APISocket != "" {
		args = append(args,
			"-device", "virtio-serial-pci,id=vs0",
			"-chardev", fmt.Sprintf("socket,id=apibridge,fd=%d", apiPortFD),
			"-device", "virtserialport,bus=vs0.0,chardev=apibridge,name="+bridge.PortName)
	}
	if opts.Reboot {
		args = append(args, "-chardev", fmt.Sprintf("socket,id=qmp,fd=%d", qmpFD(opts)), "-mon", "chardev=qmp,mode=control")
	}
	return args, nil
}

// Start launches QEMU. The VM stops when ctx is cancelled or Stop is called.
func Start(ctx context.Context, opts Options) (*VM, error) {
	if _, err := os.Stat(opts.Image); err != nil {
		return nil, fmt.Errorf("open disk image: %w", err)
	}
	bin := opts.Binary
	if bin == "" {
		bin = "qemu-system-x86_64"
	}
	if _, err := exec.LookPath(bin); err != nil {
		return nil, fmt.Errorf("find %s (Debian package qemu-system-x86): %w", bin, err)
	}
	vm := &VM{done: make(chan struct{}), notify: make(chan struct{})}
	work := opts.WorkDir
	if work == "" {
		d, err := os.MkdirTemp("", "petrel-qemu-")
		if err != nil {
			return nil, fmt.Errorf("create work directory: %w", err)
		}
		vm.tmp, work = d, d
	}
	fail := func(err error) (*VM, error) {
		if vm.log != nil {
			vm.log.Close()
		}
		vm.cleanup()
		return nil, err
	}
	vars := filepath.Join(work, "OVMF_VARS.fd")
	if opts.Firmware == UEFI {
		if err := outfile.Copy(OVMFVars, vars, outfile.Options{Mode: 0o644, NoSync: true}); err != nil {
			return fail(fmt.Errorf("copy OVMF variables (Debian package ovmf): %w", err))
		}
	}
	kvm := false
	if opts.KVM != nil {
		kvm = *opts.KVM
	} else {
		kvm = KVMUsable()
	}
	if opts.ConsoleLog != "" {
		f, err := os.Create(opts.ConsoleLog)
		if err != nil {
			return fail(fmt.Errorf("create console log: %w", err))
		}
		vm.log = f
	}
	opts, err := overlays(ctx, opts, vm, work)
	if err != nil {
		return fail(err)
	}
	args, err := Args(opts, vars, kvm)
	if err != nil {
		return fail(err)
	}
	vm.opts, vm.bin, vm.args = opts, bin, args
	vm.logger = opts.Logger
	if vm.logger == nil {
		vm.logger = slog.New(slog.DiscardHandler)
	}
	if opts.APISocket != "" {
		vm.port = newPort()
		if err := vm.serveAPI(opts, vm.port); err != nil {
			return fail(err)
		}
	}
	vm.start = time.Now()
	p, err := vm.spawn(ctx)
	if err != nil {
		vm.stopAPI()
		return fail(err)
	}
	vm.cmd = p.cmd
	go vm.run(ctx, p)
	return vm, nil
}

// process is one QEMU process of a VM.
type process struct {
	cmd *exec.Cmd
	out io.Reader
	// reason receives the QMP SHUTDOWN reason when the process's monitor
	// ends (Options.Reboot only); qmp is this machine's end of it.
	reason chan string
	qmp    net.Conn
}

// monitorGrace bounds the wait for the end of a process's monitor after
// the process has exited: a child of QEMU that kept the channel open
// must not hold the VM.
const monitorGrace = 5 * time.Second

// shutdownReason returns the reason of the process's last SHUTDOWN event,
// once it has exited.
func (p *process) shutdownReason() string {
	if p.reason == nil {
		return ""
	}
	t := time.NewTimer(monitorGrace)
	defer t.Stop()
	select {
	case r := <-p.reason:
		return r
	case <-t.C:
		p.qmp.Close()
		return <-p.reason
	}
}

// spawn starts a QEMU process and attaches its API channel to the port.
func (vm *VM) spawn(ctx context.Context) (*process, error) {
	cmd := exec.CommandContext(ctx, vm.bin, vm.args...)
	cmd.Stdin = nil
	var qemuEnds []*os.File
	defer func() {
		for _, f := range qemuEnds {
			f.Close()
		}
	}()
	var apiHost, qmpHost net.Conn
	closeHosts := func() {
		for _, c := range []net.Conn{apiHost, qmpHost} {
			if c != nil {
				c.Close()
			}
		}
	}
	if vm.opts.APISocket != "" {
		q, h, err := socketpair()
		if err != nil {
			return nil, fmt.Errorf("create the API bridge channel: %w", err)
		}
		qemuEnds, apiHost = append(qemuEnds, q), h
	}
	if vm.opts.Reboot {
		q, h, err := socketpair()
		if err != nil {
			closeHosts()
			return nil, fmt.Errorf("create the QMP monitor channel: %w", err)
		}
		qemuEnds, qmpHost = append(qemuEnds, q), h
	}
	cmd.ExtraFiles = qemuEnds
	out, err := cmd.StdoutPipe()
	if err != nil {
		closeHosts()
		return nil, fmt.Errorf("pipe qemu console: %w", err)
	}
	cmd.Stderr = cmd.Stdout
	// Own process group, so that Stop and ctx cancellation end every child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		closeHosts()
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	p := &process{cmd: cmd, out: out}
	if apiHost != nil {
		vm.port.attach(apiHost)
	}
	if qmpHost != nil {
		p.reason, p.qmp = make(chan string, 1), qmpHost
		go func() {
			defer qmpHost.Close()
			p.reason <- qmpReason(qmpHost)
		}()
	}
	return p, nil
}

// run owns the VM's processes: it reads each one's console until it
// exits, starts the next one when the guest reset itself (Options.Reboot),
// and ends the VM when a process ends otherwise.
func (vm *VM) run(ctx context.Context, p *process) {
	for {
		vm.read(p.out, vm.opts.Console)
		err := p.cmd.Wait()
		reason := p.shutdownReason()
		vm.mu.Lock()
		stopped := vm.stopped
		vm.mu.Unlock()
		if reason != guestReset || stopped || ctx.Err() != nil {
			vm.waitErr = err
			break
		}
		vm.logger.Info("the guest rebooted: starting QEMU again")
		next, err := vm.spawn(ctx)
		if err != nil {
			vm.waitErr = fmt.Errorf("start QEMU again after the guest rebooted: %w", err)
			vm.add("qemu: " + vm.waitErr.Error())
			break
		}
		vm.mu.Lock()
		vm.cmd = next.cmd
		if vm.stopped {
			_ = syscall.Kill(-next.cmd.Process.Pid, syscall.SIGKILL)
		}
		vm.mu.Unlock()
		p = next
	}
	vm.stopAPI()
	vm.mu.Lock()
	if vm.log != nil {
		vm.log.Close()
		vm.log = nil
	}
	vm.mu.Unlock()
	// The temporary files (snapshot overlays) go before done closes, so
	// that a VM that has ended leaves nothing behind.
	vm.cleanup()
	close(vm.done)
}

// read adds the lines of one process's console until it ends.
func (vm *VM) read(r io.Reader, echo io.Writer) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// GRUB starts its lines with a carriage return.
		text := strings.Trim(sc.Text(), "\r")
		text = stripANSI(text)
		vm.add(text)
		if echo != nil {
			fmt.Fprintln(echo, text)
		}
	}
	// A line too long for the scanner must not stop QEMU on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

// add appends a console line and wakes the waiters.
func (vm *VM) add(text string) {
	at := time.Since(vm.start)
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.lines = append(vm.lines, Line{At: at, Text: text})
	if vm.log != nil {
		fmt.Fprintf(vm.log, "[%8.3f] %s\n", at.Seconds(), text)
	}
	close(vm.notify)
	vm.notify = make(chan struct{})
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?=]*[A-Za-z]|\x1bc`)

func stripANSI(s string) string { return ansi.ReplaceAllString(s, "") }

// WaitFor waits until a console line matches re and returns it. Lines seen
// before the call count, from index from on (use Len to skip earlier ones).
func (vm *VM) WaitFor(ctx context.Context, re *regexp.Regexp, from int, timeout time.Duration) (Line, int, error) {
	return vm.wait(ctx, from, timeout, re.String(), func(l Line) (bool, error) { return re.MatchString(l.Text), nil })
}

// wait waits until match accepts a console line or fails; pattern names
// what it waits for in errors.
func (vm *VM) wait(ctx context.Context, from int, timeout time.Duration, pattern string, match func(Line) (bool, error)) (Line, int, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		vm.mu.Lock()
		for i := from; i < len(vm.lines); i++ {
			l := vm.lines[i]
			vm.mu.Unlock()
			ok, err := match(l)
			if ok || err != nil {
				return l, i, err
			}
			vm.mu.Lock()
		}
		from = len(vm.lines)
		ch := vm.notify
		vm.mu.Unlock()
		select {
		case <-ch:
		case <-vm.done:
			// Drain lines that arrived with the exit.
			vm.mu.Lock()
			n := len(vm.lines)
			vm.mu.Unlock()
			if from < n {
				continue
			}
			return Line{}, from, fmt.Errorf("wait for %q: %w (%v); last console lines:\n  %s", pattern, ErrExited, vm.waitErr, strings.Join(vm.Tail(20), "\n  "))
		case <-deadline.C:
			return Line{}, from, &TimeoutError{Pattern: pattern, After: timeout, Tail: vm.Tail(20)}
		case <-ctx.Done():
			return Line{}, from, fmt.Errorf("wait for %q: %w", pattern, ctx.Err())
		}
	}
}

// Len is the number of console lines seen so far.
func (vm *VM) Len() int {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return len(vm.lines)
}

// Lines returns a copy of every console line seen so far.
func (vm *VM) Lines() []Line {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return append([]Line(nil), vm.lines...)
}

// Tail returns the last n console lines.
func (vm *VM) Tail(n int) []string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	start := max(0, len(vm.lines)-n)
	out := make([]string, 0, n)
	for _, l := range vm.lines[start:] {
		out = append(out, l.Text)
	}
	return out
}

// Done is closed when QEMU has exited.
func (vm *VM) Done() <-chan struct{} { return vm.done }

// Wait waits for QEMU to exit (for example after the guest powers off).
func (vm *VM) Wait(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-vm.done:
		return nil
	case <-t.C:
		return &TimeoutError{Pattern: "<qemu exit>", After: timeout, Tail: vm.Tail(20)}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop kills QEMU and waits for it to exit.
func (vm *VM) Stop() {
	vm.mu.Lock()
	vm.stopped = true
	cmd := vm.cmd
	vm.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	<-vm.done
}

func (vm *VM) cleanup() {
	if vm.tmp != "" {
		os.RemoveAll(vm.tmp)
	}
	if vm.overlayDir != "" {
		os.RemoveAll(vm.overlayDir)
	}
}
