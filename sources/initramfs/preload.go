package initramfs

import (
	"fmt"
	"path"
	"strings"
)

// PreloadList is the file of the new root that names the files /init has
// read into the page cache while systemd starts (docs/initramfs.md).
const PreloadList = "/usr/lib/petrel/preload"

// maxPreloadFiles bounds the list: each file is a descriptor handed to the
// reading process.
const maxPreloadFiles = 64

// ReadPreloadList parses a preload list: one absolute, clean path per
// line; blank lines and lines starting with '#' are skipped. Every bad
// line is reported, by number.
func ReadPreloadList(data string) ([]string, error) {
	var out, problems []string
	seen := map[string]bool{}
	for i, l := range strings.Split(data, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
			continue
		case !strings.HasPrefix(l, "/") || path.Clean(l) != l || l == "/":
			problems = append(problems, fmt.Sprintf("line %d: %q: expected the absolute, clean path of a file", i+1, l))
		case seen[l]:
			problems = append(problems, fmt.Sprintf("line %d: %q is listed twice", i+1, l))
		default:
			seen[l] = true
			out = append(out, l)
		}
	}
	if len(out) > maxPreloadFiles {
		problems = append(problems, fmt.Sprintf("%d files, at most %d", len(out), maxPreloadFiles))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return out, nil
}
