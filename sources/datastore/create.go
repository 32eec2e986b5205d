package datastore

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

var versionRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// Create makes a new empty datastore for version ("X.Y.Z") under base:
// the directory v<X.Y.Z>_<16 random alphanumerics> with live/ and pending/,
// then the relative links vX.Y.Z, vX.Y, vX and current, each pointing at the
// next, created in that order. Every link is replaced atomically. It returns
// the path of the current link.
func Create(base, version string) (string, error) {
	m := versionRE.FindStringSubmatch(version)
	if m == nil {
		return "", fmt.Errorf("create datastore: version %q is not X.Y.Z", version)
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("create datastore base %q: %w", base, err)
	}
	patch := "v" + version
	dirName := patch + "_" + randomAlnum(16)
	dir := filepath.Join(base, dirName)
	for _, d := range []string{dir, filepath.Join(dir, liveDir), filepath.Join(dir, pendingDir)} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", fmt.Errorf("create datastore directory %q: %w", d, err)
		}
	}
	for _, d := range []string{dir, base} {
		if err := syncDir(d); err != nil {
			return "", err
		}
	}
	minor := "v" + m[1] + "." + m[2]
	major := "v" + m[1]
	for _, l := range [][2]string{{patch, dirName}, {minor, patch}, {major, minor}, {"current", major}} {
		if err := replaceLink(base, l[0], l[1]); err != nil {
			return "", err
		}
	}
	return filepath.Join(base, "current"), nil
}

// replaceLink points base/name at target (relative) with symlink+rename.
func replaceLink(base, name, target string) error {
	tmp := filepath.Join(base, tempPrefix+randomHex(8))
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("create link %q: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(base, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace link %q: %w", name, err)
	}
	return syncDir(base)
}

func randomAlnum(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
