package testkit

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// RepoRoot returns the root of the Petrel repository: the nearest
// directory at or above the working directory (a test runs in its
// package's directory) that holds both go.mod and Twoliter.toml.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("find repository root: %v", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if isFile(filepath.Join(d, "go.mod")) && isFile(filepath.Join(d, "Twoliter.toml")) {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("find repository root: no directory above %s holds go.mod and Twoliter.toml", dir)
		}
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// sdkTool is the part of an [[sdk.tool]] entry of Twoliter.toml that
// Tool needs; tools/project holds the full type.
type sdkTool struct {
	Command string `toml:"command"`
	File    string `toml:"file"`
	Package string `toml:"package"`
}

// sdkTools reads the [[sdk.tool]] list of the repository's Twoliter.toml.
func sdkTools(t testing.TB) []sdkTool {
	t.Helper()
	var m struct {
		SDK struct {
			Tools []sdkTool `toml:"tool"`
		} `toml:"sdk"`
	}
	path := filepath.Join(RepoRoot(t), "Twoliter.toml")
	if _, err := toml.DecodeFile(path, &m); err != nil {
		t.Fatalf("read the host tool list: decode %s: %v", path, err)
	}
	return m.SDK.Tools
}

// Tool returns the path of the host tool name, a command looked up in
// PATH and then in /usr/sbin and /sbin, or, when name is absolute, a file
// that must exist (OVMF firmware, GRUB modules). It fails the test when
// the tool is missing, naming its Debian package, and when Twoliter.toml's
// [[sdk.tool]] list does not name it: what the tests use, `buildctl setup`
// must install. The go command, which runs the tests, is the exception.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if name == "go" {
		p, err := exec.LookPath("go")
		if err != nil {
			t.Fatalf("go not found in PATH: run the tests with the Go toolchain's bin directory in PATH")
		}
		return p
	}
	var tool *sdkTool
	for _, st := range sdkTools(t) {
		if st.Command == name || (st.File != "" && st.File == name) {
			tool = &st
			break
		}
	}
	if tool == nil {
		t.Fatalf("%s is not in Twoliter.toml's [[sdk.tool]] list: add it with its Debian package, so that buildctl setup installs what the tests use", name)
		return ""
	}
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err != nil {
			t.Fatalf("%s missing: install the Debian package %s (or run buildctl setup)", name, tool.Package)
		}
		return name
	}
	p, err := lookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install the Debian package %s (or run buildctl setup)", name, tool.Package)
	}
	return p
}

// Tools checks several host tools at once with Tool, for a test that
// runs them through the code under test.
func Tools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		Tool(t, n)
	}
}

// lookPath finds a command in PATH, then in the sbin directories that an
// unprivileged user's PATH may lack.
func lookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		if st, serr := os.Stat(filepath.Join(d, name)); serr == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return filepath.Join(d, name), nil
		}
	}
	return "", err
}

// Run runs the host tool name (found with Tool) with args and returns its
// standard output; when the command fails, it fails the test with the
// command line, the error and everything the command printed.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	return RunCmd(t, exec.Command(Tool(t, name), args...))
}

// RunEnv is Run with env (KEY=value) added to the environment, for
// example MTOOLS_SKIP_CHECK=1 for mtools on an image without a partition
// table.
func RunEnv(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(Tool(t, name), args...)
	cmd.Env = append(os.Environ(), env...)
	return RunCmd(t, cmd)
}

// RunCmd runs a prepared command (with its own Dir, Env or Stdin) and
// returns its standard output. Output the caller did not redirect is
// captured; when the command fails, RunCmd fails the test with the
// command line, the error, the standard output and the standard error.
func RunCmd(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &stderr
	}
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(cmd.Args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// GoBuild builds the Go package pkg (an import path, or a directory
// relative to the test's package) into the file out as a static binary
// (CGO_ENABLED=0, -trimpath), the way images ship Petrel's programs, and
// returns out.
func GoBuild(t testing.TB, pkg, out string) string {
	t.Helper()
	cmd := exec.Command(Tool(t, "go"), "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	RunCmd(t, cmd)
	return out
}
