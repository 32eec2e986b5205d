package render

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/petrel-os/petrel/sources/outfile"
)

// parseMode parses an octal mode string; "" is 0644.
func parseMode(s string) (os.FileMode, error) {
	if s == "" {
		return 0o644, nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("mode %q is not an octal file mode", s)
	}
	if m&0o777 == 0 {
		return 0, fmt.Errorf("mode %q gives nobody access to the file", s)
	}
	return os.FileMode(m), nil
}

// writeAtomic writes data to path with mode through outfile (temp file in
// the same directory, fsync, rename, directory fsync), creating the
// directory first.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory of %q: %w", path, err)
	}
	return outfile.WriteFile(path, data, outfile.Options{Mode: mode})
}
