package qemu

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// qmpScript is a fake QEMU that counts its starts in the file $1 of the
// script's directory, prints its disk argument, and on its QMP monitor
// (fd $QMP) reports a SHUTDOWN with the reason the start's number picks.
const qmpScript = `
dir=$(dirname "$0")
n=$(( $(cat "$dir/starts" 2>/dev/null || echo 0) + 1 ))
echo $n > "$dir/starts"
for a in "$@"; do case "$a" in file=*if=virtio*) echo "boot $n: drive $a";; esac; done
echo '{"QMP": {"version": {}, "capabilities": []}}' >&FD
read -r caps <&FD
echo "boot $n: monitor got $caps"
case $n in
1) echo "boot 1: rebooting"; echo '{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}}' >&FD; exit 0;;
2) echo "petrel: host ready (boot 2)"; echo "boot 2: powering off"; echo '{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}' >&FD; exit 0;;
esac
echo "boot $n: must not start"
`

func TestRebootRestartsQEMU(t *testing.T) {
	off := false
	for _, tt := range []struct {
		name string
		opts Options
		fd   string
	}{
		{"snapshot", Options{Snapshot: true}, "3"},
		{"api", Options{APISocket: filepath.Join(t.TempDir(), "api.sock")}, "4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			work := t.TempDir()
			opts.Image, opts.Firmware, opts.KVM, opts.Reboot, opts.WorkDir = image(t), BIOS, &off, true, work
			opts.Binary = fakeQEMU(t, strings.ReplaceAll(qmpScript, "FD", tt.fd))
			vm, err := Start(t.Context(), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Stop()
			if _, _, err := vm.WaitFor(t.Context(), regexp.MustCompile(`host ready \(boot 2\)`), 0, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			if err := vm.Wait(t.Context(), 20*time.Second); err != nil {
				t.Fatalf("the VM after a guest power-off: %v, want it ended", err)
			}
			console := strings.Join(vm.Tail(100), "\n")
			if strings.Contains(console, "must not start") {
				t.Errorf("QEMU started again after the guest powered off:\n%s", console)
			}
			for _, want := range []string{`boot 1: monitor got {"execute":"qmp_capabilities"}`, "boot 1: rebooting", "boot 2: powering off"} {
				if !strings.Contains(console, want) {
					t.Errorf("console lacks %q:\n%s", want, console)
				}
			}
			// A snapshot that lives through the reboot is a qcow2 overlay
			// over the image, the same for both processes, gone with the VM.
			drive := regexp.MustCompile(`(?m)^boot (\d): drive file=([^,]+),format=(\w+),if=virtio(.*)$`).FindAllStringSubmatch(console, -1)
			if len(drive) != 2 || drive[0][2] != drive[1][2] {
				t.Fatalf("drives = %q, want the same in both boots", drive)
			}
			if tt.opts.Snapshot {
				if drive[0][3] != "qcow2" || drive[0][4] != "" || !strings.HasPrefix(drive[0][2], work) {
					t.Errorf("snapshot drive = %q, want a qcow2 overlay in %s without snapshot=on", drive[0][0], work)
				}
				if _, err := os.Stat(drive[0][2]); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("overlay %s after the VM ended: %v, want it removed", drive[0][2], err)
				}
			} else if drive[0][3] != "raw" || drive[0][2] != opts.Image {
				t.Errorf("drive = %q, want the image itself", drive[0][0])
			}
		})
	}
}

func TestOverlayKeepsImage(t *testing.T) {
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, bytes.Repeat([]byte{0xab}, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	vm := &VM{}
	opts, err := overlays(t.Context(), Options{Image: img, DataImage: img, Snapshot: true, Reboot: true}, vm, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if opts.Snapshot || opts.diskFormat != "qcow2" || filepath.Dir(opts.Image) != vm.overlayDir || filepath.Dir(opts.DataImage) != vm.overlayDir {
		t.Errorf("overlays = %+v (dir %s)", opts, vm.overlayDir)
	}
	_, err = overlays(t.Context(), Options{Image: filepath.Join(t.TempDir(), "missing.img"), Snapshot: true, Reboot: true}, &VM{}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "create snapshot overlay of") || !strings.Contains(err.Error(), "missing.img") {
		t.Errorf("overlay of a missing image: %v", err)
	}
	same, err := overlays(t.Context(), Options{Image: img, Snapshot: true}, &VM{}, t.TempDir())
	if err != nil || same.Image != img || !same.Snapshot {
		t.Errorf("overlays without Reboot = %+v, %v; want opts unchanged", same, err)
	}
}

func TestPortAcrossProcesses(t *testing.T) {
	p := newPort()
	far1, near1 := net.Pipe()
	p.attach(near1)
	go func() { far1.Write([]byte("one")); far1.Close() }()
	b := make([]byte, 16)
	n, err := p.Read(b)
	if err != nil || string(b[:n]) != "one" {
		t.Fatalf("Read = %q, %v", b[:n], err)
	}
	// The first channel has ended: a write is dropped, a read waits for
	// the next channel.
	if n, err := p.Write([]byte("lost")); err != nil || n != 4 {
		t.Errorf("Write between processes = %d, %v; want it dropped without an error", n, err)
	}
	got := make(chan string, 1)
	go func() {
		n, err := p.Read(b)
		got <- string(b[:n]) + "|" + errString(err)
	}()
	select {
	case g := <-got:
		t.Fatalf("Read returned %q with no channel attached", g)
	case <-time.After(100 * time.Millisecond):
	}
	far2, near2 := net.Pipe()
	p.attach(near2)
	go far2.Write([]byte("two"))
	if g := <-got; g != "two|" {
		t.Errorf("Read after attach = %q, want two", g)
	}
	go func() {
		w := make([]byte, 5)
		io.ReadFull(far2, w)
		got <- string(w)
	}()
	if _, err := p.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g != "hello" {
		t.Errorf("far end read %q", g)
	}
	go func() {
		_, err := p.Read(b)
		got <- errString(err)
	}()
	time.Sleep(50 * time.Millisecond)
	p.Close()
	if g := <-got; g != io.EOF.Error() {
		t.Errorf("Read after Close = %q, want EOF", g)
	}
	if _, err := p.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestQMPReason(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"reset", `{"QMP": {}}` + "\n" + `{"return": {}}{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}}`, "guest-reset"},
		{"power-off", `{"QMP": {}}{"return": {}}{"event": "STOP"}{"event": "SHUTDOWN", "data": {"reason": "guest-shutdown"}}`, "guest-shutdown"},
		{"killed", `{"QMP": {}}{"return": {}}`, ""},
		{"no greeting", `{"return": {}}{"event": "SHUTDOWN", "data": {"reason": "guest-reset"}}`, ""},
		{"garbage", `not json`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var sent bytes.Buffer
			rw := struct {
				io.Reader
				io.Writer
			}{strings.NewReader(tt.in), &sent}
			if got := qmpReason(rw); got != tt.want {
				t.Errorf("qmpReason = %q, want %q", got, tt.want)
			}
			if strings.HasPrefix(tt.in, `{"QMP"`) && sent.String() != `{"execute":"qmp_capabilities"}`+"\n" {
				t.Errorf("sent %q, want qmp_capabilities", sent.String())
			}
		})
	}
}

func TestRebootArgs(t *testing.T) {
	for _, tt := range []struct {
		opts Options
		want string
	}{
		{Options{Image: "d.img", Reboot: true}, "-chardev socket,id=qmp,fd=3 -mon chardev=qmp,mode=control"},
		{Options{Image: "d.img", Reboot: true, APISocket: "/tmp/a.sock"}, "-chardev socket,id=qmp,fd=4 -mon chardev=qmp,mode=control"},
	} {
		args, err := Args(tt.opts, "vars.fd", false)
		if a := strings.Join(args, " "); err != nil || !strings.Contains(a, tt.want) || !strings.Contains(a, "-no-reboot") {
			t.Errorf("Args(%+v) = %q, %v; want %q and -no-reboot", tt.opts, a, err, tt.want)
		}
	}
	if args, _ := Args(Options{Image: "d.img"}, "vars.fd", false); strings.Contains(strings.Join(args, " "), "qmp") {
		t.Errorf("Args without Reboot = %q, want no monitor", args)
	}
}
