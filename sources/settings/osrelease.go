package settings

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// versionFromOSRelease returns VERSION_ID from an os-release file.
func versionFromOSRelease(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open os-release: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || k != "VERSION_ID" {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		}
		return strings.Trim(v, `'"`), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read os-release %q: %w", path, err)
	}
	return "", fmt.Errorf("read os-release %q: no VERSION_ID", path)
}
