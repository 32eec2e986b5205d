package buildctl_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

// TestCoreKit builds the repository's real core kit (the Go agents, the
// release, and the pinned Debian packages fetched with apt-get: kernel,
// systemd, containerd, ...) in a copy of the project, installs it into an
// empty root and runs an agent. It takes a minute or two cold.
func TestCoreKit(t *testing.T) {
	repo := filepath.Join("..", "..")
	root := t.TempDir()
	for _, p := range []string{"Twoliter.toml", "go.mod", "go.sum", "packages", "kits", "variants", "sources", "cmd"} {
		if err := os.CopyFS(filepath.Join(root, p), os.DirFS(filepath.Join(repo, p))); err != nil {
			// CopyFS copies directories; single files go through ReadFile.
			data, rerr := os.ReadFile(filepath.Join(repo, p))
			if rerr != nil {
				t.Fatalf("copy %s: %v", p, err)
			}
			os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
			if err := os.WriteFile(filepath.Join(root, p), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	os.WriteFile(filepath.Join(root, "Makefile.toml"), []byte("[env]\nBUILDSYS_ARCH = \"x86_64\"\nBUILDSYS_BUILD_DIR = \"build\"\n"), 0o644)
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "core kit"}} {
		testkit.Git(t, root, args...)
	}

	code, out, errOut := buildctlRun(t, root, "build-kit")
	if code != 0 {
		t.Fatalf("build-kit = %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	t.Logf("%s%s", errOut, out)
	repoDir := filepath.Join(root, "build/kits/core-kit/x86_64")
	rpms, _ := filepath.Glob(filepath.Join(repoDir, "*.rpm"))
	var names []string
	for _, r := range rpms {
		names = append(names, filepath.Base(r))
	}
	for _, want := range []string{"petrel-kernel-6.1.192-2.x86_64.rpm", "petrel-kernel-modules-6.1.192-2.x86_64.rpm",
		"petrel-os-0.1.0-1.x86_64.rpm", "petrel-release-0.1.0-1.noarch.rpm", "petrel-systemd-", "petrel-glibc-", "petrel-host-"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("core-kit lacks %s: %v", want, names)
		}
	}
	if _, err := os.Stat(filepath.Join(repoDir, "repodata", "repomd.xml")); err != nil {
		t.Errorf("core-kit has no repodata: %v", err)
	}
	qi := testkit.Run(t, "rpm", "-qip", filepath.Join(repoDir, "petrel-kernel-6.1.192-2.x86_64.rpm"))
	if !strings.Contains(qi, "License     : GPL-2.0-only") || !strings.Contains(qi, "Vendor      : Petrel") {
		t.Errorf("rpm -qip of the kernel:\n%s", qi)
	}

	inst := t.TempDir()
	testkit.Run(t, "rpm", append([]string{"--root", inst, "-i", "--nosignature"}, rpms...)...)
	for _, f := range []string{"boot/vmlinuz", "boot/config", "boot/System.map", "usr/lib/modules/6.1.0-56-amd64/modules.dep",
		"usr/lib/systemd/system/configured.target", "usr/lib/systemd/system/preconfigured.target"} {
		if _, err := os.Stat(filepath.Join(inst, f)); err != nil {
			t.Errorf("installed core-kit lacks /%s: %v", f, err)
		}
	}
	help, err := exec.Command(filepath.Join(inst, "usr/bin/apiclient"), "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(help), "apiclient") {
		t.Errorf("installed apiclient --help = %q, %v", help, err)
	}
	if code, out, _ := buildctlRun(t, root, "build-kit"); code != 0 || !regexp.MustCompile(`all \d+ packages cached`).MatchString(out) {
		t.Errorf("second build-kit = %d, %q; want all cached", code, out)
	}
}
