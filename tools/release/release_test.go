package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

// fakeRunner makes small outputs and counts its calls.
type fakeRunner struct {
	t     *testing.T
	src   string
	calls []string
	fail  map[string]error
}

func (f *fakeRunner) call(step, variant string) error {
	f.calls = append(f.calls, variant+"/"+step)
	return f.fail[variant+"/"+step]
}

func (f *fakeRunner) Image(_ context.Context, v string) (string, error) {
	if err := f.call(StepImage, v); err != nil {
		return "", err
	}
	return testkit.Tree(f.t, map[string]string{v + ".img": "image of " + v, v + ".spdx.json": "{}", v + "-amis.json": "old", v + ".ova": "stale"}), nil
}

func (f *fakeRunner) OVA(_ context.Context, v string) (string, error) {
	if err := f.call(StepOVA, v); err != nil {
		return "", err
	}
	return filepath.Join(testkit.Tree(f.t, map[string]string{v + ".ova": "ova of " + v}), v+".ova"), nil
}

func (f *fakeRunner) Repo(_ context.Context, v string) (string, error) {
	if err := f.call(StepRepo, v); err != nil {
		return "", err
	}
	return testkit.Tree(f.t, map[string]string{"metadata/1.root.json": "root", "targets/x.zst": "target of " + v}), nil
}

func (f *fakeRunner) AMI(_ context.Context, v string) ([]string, error) {
	if err := f.call(StepAMI, v); err != nil {
		return nil, err
	}
	return []string{filepath.Join(testkit.Tree(f.t, map[string]string{v + "-amis.json": "{}"}), v+"-amis.json")}, nil
}

func plan(root string) Plan {
	return Plan{Version: "0.1.0", BuildID: "abcd1234", Arch: "x86_64", Root: root, Variants: []Variant{
		{Name: "aws-dev", Off: map[string]string{StepOVA: "no vmdk image"}},
		{Name: "vmware-dev", Off: map[string]string{StepAMI: "no ami.toml"}},
	}}
}

func TestRun(t *testing.T) {
	root := t.TempDir()
	r := &fakeRunner{t: t}
	sum, err := Run(t.Context(), plan(root), r, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"aws-dev/image", "aws-dev/repo", "aws-dev/ami", "vmware-dev/image", "vmware-dev/ova", "vmware-dev/repo"}
	if !slices.Equal(r.calls, want) {
		t.Errorf("steps run %v, want %v", r.calls, want)
	}
	dir := filepath.Join(root, "0.1.0-abcd1234")
	files := map[string]string{
		"images/x86_64-aws-dev/aws-dev.img": "image of aws-dev", "images/x86_64-aws-dev/aws-dev-amis.json": "{}",
		"images/x86_64-vmware-dev/vmware-dev.ova": "ova of vmware-dev", "repos/vmware-dev/x86_64/targets/x.zst": "target of vmware-dev",
	}
	for f, content := range files {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || string(b) != content {
			t.Errorf("%s: %q, %v; want %q", f, b, err, content)
		}
	}
	// SHA256SUMS covers every file, in sha256sum's format.
	sums, err := os.ReadFile(filepath.Join(dir, SumsFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(sums)), "\n")
	if len(lines) != 10 || sum.Files != 10 {
		t.Errorf("SHA256SUMS has %d lines (summary %d), want 10:\n%s", len(lines), sum.Files, sums)
	}
	for _, l := range lines {
		h, f, _ := strings.Cut(l, "  ")
		b, err := os.ReadFile(filepath.Join(dir, f))
		d := sha256.Sum256(b)
		if err != nil || h != hex.EncodeToString(d[:]) {
			t.Errorf("SHA256SUMS line %q: %v", l, err)
		}
	}
	var table bytes.Buffer
	sum.Table(&table)
	for _, w := range []string{"VARIANT     STEP   STATUS  TIME", "aws-dev     ova    off", "no vmdk image", "vmware-dev  ami    off", "(all)       sums   done",
		"SHA256SUMS (10 files)"} {
		if !strings.Contains(table.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, table.String())
		}
	}

	// A second run does nothing but the sums, which it does not rehash.
	r2 := &fakeRunner{t: t}
	sum, err = Run(t.Context(), plan(root), r2, nil)
	if err != nil || len(r2.calls) != 0 {
		t.Fatalf("second run: %v, steps run %v", err, r2.calls)
	}
	for _, row := range sum.Rows {
		if row.Step != StepSums && row.Status != "done before" && row.Status != "off" {
			t.Errorf("second run: %+v", row)
		}
	}
	// A removed output is made again.
	os.Remove(filepath.Join(dir, "images/x86_64-vmware-dev/vmware-dev.ova"))
	r3 := &fakeRunner{t: t}
	if _, err := Run(t.Context(), plan(root), r3, nil); err != nil || !slices.Equal(r3.calls, []string{"vmware-dev/ova"}) {
		t.Errorf("run after removing the OVA: %v, steps %v", err, r3.calls)
	}
}

// TestRunFailure: a failed step stops its variant, the others go on, and
// the next run does what is missing.
func TestRunFailure(t *testing.T) {
	root := t.TempDir()
	r := &fakeRunner{t: t, fail: map[string]error{"aws-dev/repo": errors.New("no keys\nmore detail")}}
	sum, err := Run(t.Context(), plan(root), r, nil)
	if err == nil || !strings.Contains(err.Error(), "repo of aws-dev: no keys") || !sum.Failed() {
		t.Fatalf("Run = %v, want the repo failure", err)
	}
	var table bytes.Buffer
	sum.Table(&table)
	for _, w := range []string{"aws-dev     repo   failed", "no keys\n", "aws-dev     ami    not run", "repo failed", "vmware-dev  repo   done"} {
		if !strings.Contains(table.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, table.String())
		}
	}
	r2 := &fakeRunner{t: t}
	if _, err := Run(t.Context(), plan(root), r2, nil); err != nil || !slices.Equal(r2.calls, []string{"aws-dev/repo", "aws-dev/ami"}) {
		t.Errorf("resumed run: %v, steps %v", err, r2.calls)
	}
}

func TestBadState(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "0.1.0-abcd1234")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, StateFile), []byte("{not json"), 0o644)
	_, err := Run(t.Context(), plan(root), &fakeRunner{t: t}, nil)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("read release state %s", filepath.Join(dir, StateFile))) {
		t.Errorf("Run over a broken release.json = %v", err)
	}
}
