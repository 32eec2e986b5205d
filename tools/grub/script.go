package grub

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"text/template"

	"github.com/petrel-os/petrel/sources/bootstate"
)

//go:embed script.tmpl
var scriptTemplate string

// Layout tells the selection script where things are on the OS disk. The
// partition numbers are GPT entry numbers (GRUB's gptN).
type Layout struct {
	// ESPPartition holds the FAT file system with the grubenv block.
	ESPPartition int
	// BootPartitionA and BootPartitionB are the banks' BOOT partitions; each
	// holds /grub/grub.cfg, /vmlinuz and /initrd.img.
	BootPartitionA int
	BootPartitionB int
	// EnvPath is the grubenv path on the ESP, e.g. "/EFI/BOOT/grubenv".
	EnvPath string
	// FailDelay is how many seconds the script waits before it reboots when
	// the chosen bank's grub.cfg returns (its boot failed).
	FailDelay int
}

// DefaultLayout is the in-place-updates layout: BIOS-BOOT=1, EFI-SYSTEM=2,
// BOOT-A=3, ROOT-A=4, HASH-A=5, RESERVED-A=6, EFI-BACKUP=7, BOOT-B=8, ...
func DefaultLayout() Layout {
	return Layout{ESPPartition: 2, BootPartitionA: 3, BootPartitionB: 8, EnvPath: "/EFI/BOOT/grubenv", FailDelay: 30}
}

// Validate reports every problem of l at once.
func (l Layout) Validate() error {
	var errs []error
	for _, p := range []struct {
		name string
		n    int
	}{{"ESPPartition", l.ESPPartition}, {"BootPartitionA", l.BootPartitionA}, {"BootPartitionB", l.BootPartitionB}} {
		if p.n < 1 || p.n > 128 {
			errs = append(errs, fmt.Errorf("layout: %s is %d, want 1..128", p.name, p.n))
		}
	}
	if l.BootPartitionA == l.BootPartitionB {
		errs = append(errs, fmt.Errorf("layout: BootPartitionA and BootPartitionB are both %d", l.BootPartitionA))
	}
	if !safePath(l.EnvPath) {
		errs = append(errs, fmt.Errorf("layout: EnvPath %q must be an absolute path of [A-Za-z0-9_./-]", l.EnvPath))
	}
	if l.FailDelay < 0 || l.FailDelay > 3600 {
		errs = append(errs, fmt.Errorf("layout: FailDelay %d, want 0..3600 seconds", l.FailDelay))
	}
	return errors.Join(errs...)
}

// safePath accepts absolute paths that need no quoting in GRUB script.
func safePath(p string) bool {
	if len(p) < 2 || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '/' || c == '-') {
			return false
		}
	}
	return true
}

type scriptBank struct {
	L, U, O, OU string
	Partition   int
}

// SelectScript returns the A/B selection script that the firmware images
// carry as (memdisk)/boot/grub/grub.cfg.
func SelectScript(l Layout) ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	prioA, _, _ := bootstate.VarNames(bootstate.BankA)
	if prioA != "petrel_prio_a" {
		// The template spells the variable names out; keep them in step.
		return nil, fmt.Errorf("render selection script: bootstate variable names changed (%s)", prioA)
	}
	ladder := make([]int, 0, bootstate.MaxCounter)
	for n := bootstate.MaxCounter; n >= 1; n-- {
		ladder = append(ladder, n)
	}
	t, err := template.New("script").Funcs(template.FuncMap{"dec": func(n int) int { return n - 1 }}).Parse(scriptTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse selection script template: %w", err)
	}
	data := struct {
		Layout
		Banks  []scriptBank
		Ladder []int
	}{
		Layout: l,
		Banks: []scriptBank{
			{L: "a", U: "A", O: "b", OU: "B", Partition: l.BootPartitionA},
			{L: "b", U: "B", O: "a", OU: "A", Partition: l.BootPartitionB},
		},
		Ladder: ladder,
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("render selection script: %w", err)
	}
	return buf.Bytes(), nil
}
