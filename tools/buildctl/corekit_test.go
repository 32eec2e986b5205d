package buildctl_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCoreKit builds the repository's real core kit (os with the Go
// agent, release, and the Debian kernel fetched with apt-get) in a copy
// that holds only what the kit needs, installs it into an empty root and
// runs the agent. It takes about 20 s cold.
func TestCoreKit(t *testing.T) {
	repo := filepath.Join("..", "..")
	root := t.TempDir()
	for _, p := range []string{"Twoliter.toml", "go.mod", "go.sum", "packages/os", "packages/release", "packages/kernel",
		"kits/core-kit", "sources/hello", "cmd/petrel-hello"} {
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
		cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
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
	want := "petrel-kernel-6.1.192-2.x86_64.rpm petrel-kernel-modules-6.1.192-2.x86_64.rpm petrel-os-0.1.0-1.x86_64.rpm petrel-release-0.1.0-1.noarch.rpm"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("core-kit holds %s, want %s", got, want)
	}
	qi, err := exec.Command("rpm", "-qip", filepath.Join(repoDir, "petrel-kernel-6.1.192-2.x86_64.rpm")).Output()
	if err != nil || !strings.Contains(string(qi), "License     : GPL-2.0-only") || !strings.Contains(string(qi), "Vendor      : Petrel") {
		t.Errorf("rpm -qip of the kernel: %v\n%s", err, qi)
	}

	inst := t.TempDir()
	if out, err := exec.Command("rpm", append([]string{"--root", inst, "-i", "--nosignature"}, rpms...)...).CombinedOutput(); err != nil {
		t.Fatalf("rpm --root -i of core-kit: %v\n%s", err, out)
	}
	for _, f := range []string{"boot/vmlinuz", "boot/config", "boot/System.map", "usr/lib/modules/6.1.0-56-amd64/modules.dep",
		"usr/lib/systemd/system/configured.target", "usr/lib/systemd/system/preconfigured.target"} {
		if _, err := os.Stat(filepath.Join(inst, f)); err != nil {
			t.Errorf("installed core-kit lacks /%s: %v", f, err)
		}
	}
	hello, err := exec.Command(filepath.Join(inst, "usr/bin/petrel-hello"), "--os-release", filepath.Join(inst, "usr/lib/os-release")).CombinedOutput()
	if err != nil || string(hello) != "Petrel OS 0.1.0\n" {
		t.Errorf("petrel-hello printed %q, %v; want \"Petrel OS 0.1.0\\n\"", hello, err)
	}
	if code, out, _ := buildctlRun(t, root, "build-kit"); code != 0 || !strings.Contains(out, "all 3 packages cached") {
		t.Errorf("second build-kit = %d, %q; want all cached", code, out)
	}
}
