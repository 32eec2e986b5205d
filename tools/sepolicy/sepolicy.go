// Package sepolicy builds and queries Petrel's SELinux policy
// (packages/selinux-policy) with the real SELinux tools: secilc compiles
// the CIL as the package build does and enforces the neverallow rules,
// setfiles checks file_contexts against the compiled policy, and sesearch
// answers what the policy allows. The policy tests use it to hold the
// policy to its promises (docs/selinux.md).
package sepolicy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/petrel-os/petrel/tools/spec"
)

// SpecName is the policy package's spec file.
const SpecName = "selinux-policy.spec"

// Sources returns the CIL files of the policy package in pkgDir, in the
// order its spec lists them (the order secilc reads them in the build).
func Sources(pkgDir string) ([]string, error) {
	path := filepath.Join(pkgDir, SpecName)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy spec: %w", err)
	}
	s, err := spec.Parse(path, data, map[string]string{"_cross_os": "petrel-"})
	if err != nil {
		return nil, fmt.Errorf("parse policy spec: %w", err)
	}
	var cil []string
	for _, src := range s.Sources {
		if strings.HasSuffix(src.Value, ".cil") {
			cil = append(cil, filepath.Join(pkgDir, src.Value))
		}
	}
	if len(cil) == 0 {
		return nil, fmt.Errorf("parse policy spec %s: no .cil sources", path)
	}
	return cil, nil
}

// Policy is a compiled policy.
type Policy struct {
	Binary       string // policy.33
	FileContexts string // file_contexts
}

// Compile compiles the policy package in pkgDir, with the extra CIL files
// after its own, into outDir with secilc as the package build runs it. A
// policy that breaks a neverallow rule does not compile: the error holds
// secilc's report.
func Compile(ctx context.Context, pkgDir, outDir string, extra ...string) (Policy, error) {
	srcs, err := Sources(pkgDir)
	if err != nil {
		return Policy{}, err
	}
	p := Policy{Binary: filepath.Join(outDir, "policy.33"), FileContexts: filepath.Join(outDir, "file_contexts")}
	args := append([]string{"--policyvers=33", "--output=" + p.Binary, "--filecontext=" + p.FileContexts}, srcs...)
	if out, err := run(ctx, "secilc", append(args, extra...)...); err != nil {
		return Policy{}, fmt.Errorf("compile SELinux policy with secilc: %w\n%s", err, out)
	}
	return p, nil
}

// CheckFileContexts validates the file_contexts file fc against the policy
// with setfiles -c: every context must be valid in it.
func (p Policy) CheckFileContexts(ctx context.Context, fc string) error {
	if out, err := run(ctx, "setfiles", "-c", p.Binary, fc); err != nil {
		return fmt.Errorf("check %s against %s with setfiles: %w\n%s", fc, p.Binary, err, out)
	}
	return nil
}

// Allows reports whether an allow rule of the policy grants source perm on
// target's class (sesearch, attributes of source and target included).
func (p Policy) Allows(ctx context.Context, source, target, class, perm string) (bool, error) {
	out, err := run(ctx, "sesearch", "-A", "-s", source, "-t", target, "-c", class, "-p", perm, p.Binary)
	if err != nil {
		return false, fmt.Errorf("sesearch: %w\n%s", err, out)
	}
	return strings.Contains(out, "allow "), nil
}

// Transitions returns the type transition rules for source creating class
// objects in target, as sesearch prints them.
func (p Policy) Transitions(ctx context.Context, source, target, class string) (string, error) {
	out, err := run(ctx, "sesearch", "-T", "-s", source, "-t", target, "-c", class, p.Binary)
	if err != nil {
		return "", fmt.Errorf("sesearch: %w\n%s", err, out)
	}
	return out, nil
}

// Info returns seinfo's statistics of the policy.
func (p Policy) Info(ctx context.Context) (string, error) {
	out, err := run(ctx, "seinfo", p.Binary)
	if err != nil {
		return "", fmt.Errorf("seinfo: %w\n%s", err, out)
	}
	return out, nil
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	var b bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.String(), err
}
