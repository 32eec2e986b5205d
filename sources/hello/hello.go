package hello

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Main runs petrel-hello with args (without the program name) and returns
// its exit code. It prints "<NAME> <VERSION_ID>" from the os-release file.
func Main(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("petrel-hello", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("os-release", "/etc/os-release", "os-release file to read")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	f, err := os.Open(*path)
	if err != nil {
		fmt.Fprintf(stderr, "petrel-hello: %s\n", err)
		return 1
	}
	defer f.Close()
	rel, err := Parse(f)
	if err != nil {
		fmt.Fprintf(stderr, "petrel-hello: read %s: %s\n", *path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s %s\n", rel["NAME"], rel["VERSION_ID"])
	return 0
}

// Parse reads os-release(5) KEY=value lines; values may be quoted.
func Parse(r io.Reader) (map[string]string, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: want KEY=value, got %q", n, line)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
			if u, err := strconv.Unquote(`"` + v[1:len(v)-1] + `"`); err == nil {
				v = u
			} else {
				v = v[1 : len(v)-1]
			}
		}
		vars[k] = v
	}
	return vars, sc.Err()
}
