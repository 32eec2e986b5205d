package api

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// DefaultOSRelease is where a host's os-release file is.
const DefaultOSRelease = "/usr/lib/os-release"

// ReadOSRelease reads an os-release file (/usr/lib/os-release on a host)
// into the fields served at /os; Arch is the architecture this program was
// built for, in the kernel's spelling (x86_64, aarch64). It returns what it
// read so far with the error.
func ReadOSRelease(path string) (OSRelease, error) {
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	if arch == "" {
		arch = runtime.GOARCH
	}
	o := OSRelease{Arch: arch}
	f, err := os.Open(path)
	if err != nil {
		return o, fmt.Errorf("open os-release: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `'"`)
		}
		switch k {
		case "PRETTY_NAME":
			o.PrettyName = v
		case "VARIANT_ID":
			o.VariantID = v
		case "VERSION_ID":
			o.VersionID = v
		case "BUILD_ID":
			o.BuildID = v
		}
	}
	if err := sc.Err(); err != nil {
		return o, fmt.Errorf("read os-release %q: %w", path, err)
	}
	return o, nil
}
