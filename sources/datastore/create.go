package datastore

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/petrel-os/petrel/sources/outfile"
)

var versionRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// Create makes a new empty datastore for version ("X.Y.Z") under base:
// the directory v<X.Y.Z>_<16 random alphanumerics> with live/ and pending/,
// then the relative links vX.Y.Z, vX.Y, vX and current, each pointing at the
// next, created in that order. Every link is replaced atomically.
// Directories are 0700 (base too, if Create makes it). It returns the path
// of the current link.
func Create(base, version string) (string, error) {
	if _, _, _, err := VersionLinks(version); err != nil {
		return "", fmt.Errorf("create datastore: %w", err)
	}
	if err := os.MkdirAll(base, dirMode); err != nil {
		return "", fmt.Errorf("create datastore base %q: %w", base, err)
	}
	dirName, err := NewDir(base, version)
	if err != nil {
		return "", err
	}
	links, _ := LinkSteps(version, dirName)
	for _, l := range links {
		if err := replaceLink(base, l.Name, l.Target); err != nil {
			return "", err
		}
	}
	return filepath.Join(base, CurrentLink), nil
}

// replaceLink points base/name at target (relative) with symlink+rename.
func replaceLink(base, name, target string) error {
	tmp := filepath.Join(base, outfile.TempPrefix+name+"."+randomHex(8))
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
