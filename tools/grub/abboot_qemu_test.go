package grub

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/bootstate"
)

// TestABBootQEMU boots one disk five times under QEMU/TCG, three times through
// OVMF (BOOTX64.EFI) and twice through SeaBIOS (boot.img + core.img), with
// host-side state changes in between. Before each boot it asks
// bootstate.Next which bank GRUB will pick and what it will write; after
// each boot it checks the console and the grubenv sector, byte for byte,
// against that prediction. Each boot takes about 3 s (GRUB only, no kernel).
func TestABBootQEMU(t *testing.T) {
	ctx := context.Background()
	efi, bios := testImages(t)
	// As after upgrade-to-inactive: B gets one try, A is the known-good bank.
	initial := bootstate.State{
		A: bootstate.BankState{Priority: 1, Successful: true},
		B: bootstate.BankState{Priority: 2, TriesLeft: 1},
	}
	disk := buildTestDisk(t, efi, bios, initial)
	uuids := map[bootstate.Bank]string{}
	for _, p := range testParts() {
		switch p.name {
		case "BOOT-A":
			uuids[bootstate.BankA] = strings.ToLower(p.guid)
		case "BOOT-B":
			uuids[bootstate.BankB] = strings.ToLower(p.guid)
		}
	}

	// host applies a transition with the production write path.
	host := func(change func(bootstate.State) (bootstate.State, error)) {
		t.Helper()
		f, err := os.OpenFile(disk.path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, _, err := bootstate.Update(ctx, f, disk.envOffset, change); err != nil {
			t.Fatalf("update boot state: %v", err)
		}
	}
	onActive := func(fn func(bootstate.State, bootstate.Bank) (bootstate.State, error), active bootstate.Bank) func(bootstate.State) (bootstate.State, error) {
		return func(s bootstate.State) (bootstate.State, error) { return fn(s, active) }
	}
	bankLine := regexp.MustCompile(`PETREL-BANK ([AB]) ([0-9a-f-]*)`)

	for i, step := range []struct {
		name     string
		fw       firmware
		before   func() // host-side changes before the boot
		wantBank bootstate.Bank
		wantTry  bool
	}{
		{name: "uefi new bank B spends its try", fw: uefi, wantBank: bootstate.BankB, wantTry: true},
		{name: "uefi B out of tries falls back to A", fw: uefi, wantBank: bootstate.BankA},
		{name: "bios upgrade to B again spends its try", fw: seabios, before: func() {
			host(onActive(bootstate.ClearInactive, bootstate.BankA))
			host(onActive(bootstate.MarkInactiveValid, bootstate.BankA))
			host(onActive(bootstate.UpgradeToInactive, bootstate.BankA))
		}, wantBank: bootstate.BankB, wantTry: true},
		{name: "bios B marked successful keeps booting", fw: seabios, before: func() {
			host(onActive(bootstate.MarkSuccessful, bootstate.BankB))
		}, wantBank: bootstate.BankB},
		{name: "uefi no bootable bank boots the higher priority anyway", fw: uefi, before: func() {
			f, err := os.OpenFile(disk.path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			broken := bootstate.State{A: bootstate.BankState{Priority: 1}, B: bootstate.BankState{Priority: 3}}
			if err := bootstate.Write(ctx, f, disk.envOffset, broken); err != nil {
				t.Fatalf("write boot state: %v", err)
			}
		}, wantBank: bootstate.BankB},
	} {
		if step.before != nil {
			step.before()
		}
		before, _ := disk.readState(t)
		want := bootstate.Next(before)
		if want.Bank != step.wantBank || want.SpentTry != step.wantTry || want.Fallback != strings.HasPrefix(step.name, "uefi no bootable") {
			t.Fatalf("step %d %s: Next(%+v) = %+v; the test plan is wrong", i, step.name, before, want)
		}
		console := boot(t, step.fw, disk.path)
		m := bankLine.FindStringSubmatch(console)
		if m == nil {
			t.Fatalf("step %d %s: console has no bank line:\n%s", i, step.name, console)
		}
		if m[1] != want.Bank.String() {
			t.Errorf("step %d %s: %s booted bank %s, bootstate.Next predicted %s\nconsole:\n%s", i, step.name, step.fw, m[1], want.Bank, console)
		}
		if m[2] != uuids[want.Bank] {
			t.Errorf("step %d %s: boot_uuid = %q, want %q (PARTUUID of BOOT-%s)", i, step.name, m[2], uuids[want.Bank], want.Bank)
		}
		after, raw := disk.readState(t)
		if after != want.After {
			t.Errorf("step %d %s: state after boot = %+v, bootstate.Next predicted %+v", i, step.name, after, want.After)
		}
		// GRUB's save_env and Go's encoder must produce the same sector.
		env, err := want.After.Env()
		if err != nil {
			t.Fatal(err)
		}
		goBlock, err := env.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, goBlock) {
			t.Errorf("step %d %s: grubenv sector differs from Go's encoding\nGRUB: %q\nGo:   %q", i, step.name, raw, goBlock)
		}
		t.Logf("step %d %s: %s booted %s; state %+v -> %+v", i, step.name, step.fw, m[1], before, after)
	}
}

// testImages builds the UEFI and BIOS GRUB images of the default layout,
// with a failed boot rebooting after one second.
func testImages(t *testing.T) ([]byte, BIOSImages) {
	t.Helper()
	var b Builder
	l := DefaultLayout()
	l.FailDelay = 1
	efi, err := b.EFI(context.Background(), l)
	if err != nil {
		t.Fatalf("build EFI image: %v", err)
	}
	bios, err := b.BIOS(context.Background(), l)
	if err != nil {
		t.Fatalf("build BIOS images: %v", err)
	}
	return efi, bios
}

// TestOutOfRangeTriesQEMU boots a disk whose grubenv gives the new bank B
// (priority 2, not successful) a tries value the script's ladder cannot
// count down: 16, or "x". GRUB must treat it as 0, so B is not bootable
// and A (priority 1, successful) boots, and the block is left as it was.
// Counting down from 16 is impossible, so without that rule B would boot
// on every start with "tries left now 16".
func TestOutOfRangeTriesQEMU(t *testing.T) {
	ctx := context.Background()
	efi, bios := testImages(t)
	disk := buildTestDisk(t, efi, bios, bootstate.Initial())
	bankLine := regexp.MustCompile(`PETREL-BANK ([AB]) `)
	for _, tt := range []struct {
		tries string
		fw    firmware
	}{{"16", uefi}, {"x", seabios}} {
		t.Run(tt.tries, func(t *testing.T) {
			env, err := bootstate.State{A: bootstate.BankState{Priority: 1, Successful: true}, B: bootstate.BankState{Priority: 2}}.Env()
			if err != nil {
				t.Fatal(err)
			}
			_, tries, _ := bootstate.VarNames(bootstate.BankB)
			if err := env.Set(tries, tt.tries); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(disk.path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			err = bootstate.WriteEnv(ctx, f, disk.envOffset, env)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			want, err := env.Encode()
			if err != nil {
				t.Fatal(err)
			}
			console := boot(t, tt.fw, disk.path)
			if m := bankLine.FindStringSubmatch(console); m == nil || m[1] != "A" {
				t.Errorf("%s booted %v with petrel_tries_b=%s, want bank A\nconsole:\n%s", tt.fw, m, tt.tries, console)
			}
			if !strings.Contains(console, "B prio=2 tries=0 ok=0") {
				t.Errorf("console does not show B's tries as 0:\n%s", console)
			}
			raw, err := os.ReadFile(disk.path)
			if err != nil {
				t.Fatal(err)
			}
			if raw := raw[disk.envOffset : disk.envOffset+bootstate.BlockSize]; !bytes.Equal(raw, want) {
				t.Errorf("grubenv changed by the boot:\n%q\nwant\n%q", raw, want)
			}
		})
	}
}
