package qemu

import (
	"context"
	"errors"
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
