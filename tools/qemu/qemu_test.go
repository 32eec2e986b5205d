package qemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeQEMU writes a script that prints lines like a serial console.
func fakeQEMU(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-qemu")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func image(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, make([]byte, 512), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWaitFor(t *testing.T) {
	off := false
	for _, tt := range []struct {
		name    string
		script  string
		pattern string
		timeout time.Duration
		wantErr error
		wantTO  bool
	}{
		{"ready", "echo 'Linux version 6.1'; echo 'petrel: host ready bank A'; sleep 30", `host ready`, 20 * time.Second, nil, false},
		{"exited", "echo 'kernel panic'; exit 3", `host ready`, 20 * time.Second, ErrExited, false},
		{"timeout", "echo 'booting'; sleep 30", `host ready`, 500 * time.Millisecond, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "console.log")
			vm, err := Start(context.Background(), Options{
				Image: image(t), Firmware: BIOS, Binary: fakeQEMU(t, tt.script), KVM: &off, ConsoleLog: log,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Stop()
			line, _, err := vm.WaitFor(context.Background(), regexp.MustCompile(tt.pattern), 0, tt.timeout)
			var te *TimeoutError
			switch {
			case tt.wantTO:
				if !errors.As(err, &te) || !slices.Contains(te.Tail, "booting") {
					t.Fatalf("WaitFor = %v, want a TimeoutError with the console tail", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), "kernel panic") {
					t.Fatalf("WaitFor = %v, want %v with the console tail", err, tt.wantErr)
				}
			default:
				if err != nil || !strings.Contains(line.Text, "bank A") {
					t.Fatalf("WaitFor = %q, %v", line.Text, err)
				}
			}
			vm.Stop()
			b, _ := os.ReadFile(log)
			if len(b) == 0 {
				t.Errorf("console log %s is empty", log)
			}
		})
	}
}

func TestArgs(t *testing.T) {
	args, err := Args(Options{Image: "d.img", ConfigDrive: "c.img", Snapshot: true}, "vars.fd", false)
	if err != nil {
		t.Fatal(err)
	}
	a := strings.Join(args, " ")
	for _, want := range []string{"-accel tcg,thread=multi", "-smp 2", "if=pflash,format=raw,readonly=on,file=" + OVMFCode, "file=vars.fd",
		"file=d.img,format=raw,if=virtio,snapshot=on", "file=c.img,format=raw,if=virtio,readonly=on", "-serial stdio", "-no-reboot"} {
		if !strings.Contains(a, want) {
			t.Errorf("Args() = %q, missing %q", a, want)
		}
	}
	args, err = Args(Options{Image: "d.img", Firmware: BIOS}, "", true)
	if err != nil {
		t.Fatal(err)
	}
	b := strings.Join(args, " ")
	if strings.Contains(b, "pflash") || !strings.Contains(b, "-accel kvm") {
		t.Errorf("BIOS/KVM Args() = %q", b)
	}
}

func TestConfigDrive(t *testing.T) {
	out := filepath.Join(t.TempDir(), "cidata.img")
	if err := ConfigDrive(context.Background(), []byte("[settings]\nmotd = \"hi\"\n"), out); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("mtype", "-i", out, "::/user-data")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), `motd = "hi"`) {
		t.Fatalf("mtype user-data = %q, %v", b, err)
	}
	lbl, err := exec.Command("fatlabel", out).CombinedOutput()
	if err != nil || strings.TrimSpace(string(lbl)) != ConfigDriveLabel {
		t.Fatalf("fatlabel = %q, %v; want %s", lbl, err, ConfigDriveLabel)
	}
}

func TestNetworkArgs(t *testing.T) {
	args, err := Args(Options{Image: "d.img",
		GuestForwards: []GuestForward{{Guest: "10.0.2.100:80", Host: "127.0.0.1:8080"}},
		HostForwards:  []HostForward{{Host: "127.0.0.1:2222", GuestPort: 22}},
		APISocket:     "/tmp/api.sock"}, "vars.fd", false)
	if err != nil {
		t.Fatal(err)
	}
	a := strings.Join(args, " ")
	for _, want := range []string{
		"-netdev user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:socat STDIO TCP:127.0.0.1:8080,hostfwd=tcp:127.0.0.1:2222-:22 ",
		"-device virtio-serial-pci,id=vs0 -chardev socket,id=apibridge,fd=3 -device virtserialport,bus=vs0.0,chardev=apibridge,name=org.petrel.api.0",
	} {
		if !strings.Contains(a, want) {
			t.Errorf("Args() = %q, missing %q", a, want)
		}
	}
	ec2, err := Args(Options{Image: "d.img", Network: EC2Network, SystemVendor: "Amazon EC2",
		GuestForwards: []GuestForward{{Guest: "169.254.169.254:80", Host: "127.0.0.1:8080"}}}, "vars.fd", false)
	if e := strings.Join(ec2, " "); err != nil ||
		!strings.Contains(e, "-netdev user,id=n0,restrict=on,net=169.254.169.0/24,guestfwd=tcp:169.254.169.254:80-cmd:socat STDIO TCP:127.0.0.1:8080 ") ||
		!strings.Contains(e, "-smbios type=1,manufacturer=Amazon EC2") {
		t.Errorf("EC2 Args() = %q, %v", e, err)
	}
	for _, bad := range []Options{{Network: "10.0.0.0/30"}, {Network: "fd00::/64"}, {Network: "10.0.2.1/24"}, {SystemVendor: "a,b"},
		{GuestForwards: []GuestForward{{Guest: "169.254.169.254:80", Host: "127.0.0.1:80"}}}} {
		if _, err := Args(bad, "", false); err == nil {
			t.Errorf("Args(%+v) = nil error", bad)
		}
	}
	plain, err := Args(Options{Image: "d.img"}, "vars.fd", false)
	if err != nil || !slices.Contains(plain, "user,id=n0,restrict=on") {
		t.Errorf("Args() without forwards = %q, %v; want a restricted user network", plain, err)
	}
	_, err = Args(Options{Image: "d.img",
		GuestForwards: []GuestForward{{Guest: "192.168.1.5:80", Host: "127.0.0.1:80"}, {Guest: "10.0.2.2:80", Host: "10.1.1.1:80"}},
		HostForwards:  []HostForward{{Host: "0.0.0.0:2222", GuestPort: 22}, {Host: "127.0.0.1:2223"}}}, "", false)
	for _, want := range []string{
		`guest forward 0: guest address "192.168.1.5:80": want an address of 10.0.2.0/24 other than the gateway .2 and DNS .3`,
		`guest forward 1: guest address "10.0.2.2:80": want an address of 10.0.2.0/24`,
		`guest forward 1: host address "10.1.1.1:80": want an IPv4 loopback address with a port`,
		`host forward 0: host address "0.0.0.0:2222": want an IPv4 loopback address`,
		`host forward 1: guest port 0`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Args() error = %v, want it to say %q", err, want)
		}
	}
}

// TestQEMUNetworkAndBridge starts the real QEMU with forwards and the API
// socket (no guest OS: a blank disk): QEMU takes the arguments, the host
// forward listens on loopback, and a client of the API socket waits for a
// guest instead of failing.
func TestQEMUNetworkAndBridge(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // a free port for the host forward
	sock := filepath.Join(t.TempDir(), "api.sock")
	vm, err := Start(t.Context(), Options{Image: image(t), Firmware: BIOS, MemoryMiB: 128, APISocket: sock, APIWait: 2 * time.Second,
		GuestForwards: []GuestForward{{Guest: "10.0.2.100:80", Host: "127.0.0.1:9"}},
		HostForwards:  []HostForward{{Host: fmt.Sprintf("127.0.0.1:%d", hostPort), GuestPort: 22}}})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Stop()
	var c net.Conn
	for i := 0; ; i++ {
		if c, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", hostPort)); err == nil {
			break
		}
		select {
		case <-vm.Done():
			t.Fatalf("qemu exited: %v", vm.Tail(20))
		case <-time.After(100 * time.Millisecond):
		}
		if i > 100 {
			t.Fatalf("host forward 127.0.0.1:%d does not listen: %v", hostPort, err)
		}
	}
	c.Close()
	start := time.Now()
	api, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	api.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := api.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("API socket without a guest agent: read %d, %v; want it closed after APIWait", n, err)
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Errorf("the API socket closed the connection after %s, before APIWait", waited)
	}
	if vm.APISession() != 0 {
		t.Errorf("APISession = %08x without a guest agent", vm.APISession())
	}
	start = time.Now()
	if s := vm.WaitAPISession(t.Context(), 300*time.Millisecond); s != 0 || time.Since(start) < 300*time.Millisecond {
		t.Errorf("WaitAPISession without a guest agent = %08x after %s, want 0 after the timeout", s, time.Since(start))
	}
	vm.Stop()
	start = time.Now()
	if s := vm.WaitAPISession(t.Context(), time.Minute); s != 0 || time.Since(start) > 10*time.Second {
		t.Errorf("WaitAPISession after QEMU stopped = %08x after %s, want 0 at once", s, time.Since(start))
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("API socket %s after QEMU stopped: %v, want it removed", sock, err)
	}
}

// TestConsoleLines checks the cleanup of console lines: GRUB's leading
// carriage returns and OVMF's mode escapes go, so patterns can anchor.
func TestConsoleLines(t *testing.T) {
	off := false
	script := `printf '\033[=3h\033[=3hBdsDxe: loading Boot0001\r\n\rpetrel: booting bank a from (hd0,gpt3)\r\n'; sleep 30`
	vm, err := Start(context.Background(), Options{Image: image(t), Firmware: BIOS, Binary: fakeQEMU(t, script), KVM: &off})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Stop()
	if _, _, err := vm.WaitFor(context.Background(), regexp.MustCompile(`^petrel: booting bank a from`), 0, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := vm.Lines()[0].Text; got != "BdsDxe: loading Boot0001" {
		t.Errorf("first line = %q", got)
	}
}
