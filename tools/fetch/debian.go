package fetch

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/petrel-os/petrel/tools/project"
)

// debPrefix is the start of the file name apt gives to package pkg at
// version ver: "<pkg>_<ver>_", with an epoch colon written as %3a.
func debPrefix(pkg, ver string) string {
	return pkg + "_" + strings.ReplaceAll(ver, ":", "%3a") + "_"
}

// fetchDebian downloads the Debian binary package f.Debian ("name=version")
// with apt-get download into a temporary directory and moves it into the
// cache after verifying it. name is f's file name, or "" for the .deb name.
func (fe *Fetcher) fetchDebian(ctx context.Context, f project.ExternalFile, name, want string) (string, error) {
	pkg, ver, ok := strings.Cut(f.Debian, "=")
	if !ok || pkg == "" || ver == "" || strings.ContainsAny(f.Debian, " /\t\n") {
		return "", fmt.Errorf("%w: debian %q: want \"name=version\"", project.ErrInvalidInput, f.Debian)
	}
	if err := os.MkdirAll(fe.Dir, 0o755); err != nil {
		return "", fmt.Errorf("create cache directory: %w", err)
	}
	tmp, err := os.MkdirTemp(fe.Dir, ".apt-*")
	if err != nil {
		return "", fmt.Errorf("create download directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	// apt downloads as the unprivileged _apt user, which must be able to
	// write the directory.
	if err := os.Chmod(tmp, 0o777); err != nil {
		return "", fmt.Errorf("set mode of %q: %w", tmp, err)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", f.Debian)
	cmd.Dir = tmp
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("apt-get download %s: %w: %s", f.Debian, err, strings.TrimSpace(out.String()))
	}
	debs, err := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if err != nil || len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s: expected one .deb, found %d", f.Debian, len(debs))
	}
	if name == "" {
		name = filepath.Base(debs[0])
	}
	in, err := os.Open(debs[0])
	if err != nil {
		return "", fmt.Errorf("open downloaded package: %w", err)
	}
	defer in.Close()
	return fe.place(in, name, want, "debian:"+f.Debian)
}
