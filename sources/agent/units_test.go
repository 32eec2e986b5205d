package agent

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestShippedCommandLines finds every command line that the unit files
// under packages/ and the shipped settings defaults give a Petrel program
// and checks that it parses: run with --help appended, the program must
// exit 0 and show the help of the subcommand the line names.
func TestShippedCommandLines(t *testing.T) {
	t.Parallel()
	mains := Agents()
	var files []string
	for _, pattern := range []string{"../../packages/*/*.service", "../settings/defaults/*.toml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	// A program path, then its arguments up to the end of the line or of
	// a TOML string.
	re := regexp.MustCompile(`/usr/bin/([a-z-]+)((?: [^"\n]*)?)`)
	checked := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			prog, args := m[1], strings.Fields(m[2])
			main, ok := mains[prog]
			if !ok {
				continue
			}
			checked++
			var out, errb bytes.Buffer
			code := main(context.Background(), append(args, "--help"), &out, &errb)
			// The command path is the program and the subcommand words
			// (leading arguments that are neither flags nor paths).
			path := []string{prog}
			for _, a := range args {
				if strings.HasPrefix(a, "-") || strings.HasPrefix(a, "/") {
					break
				}
				path = append(path, a)
			}
			usage := "Usage:\n  " + strings.Join(path, " ") + " "
			if code != 0 || !strings.Contains(out.String(), usage) {
				t.Errorf("%s: %s %q: exit %d, stderr %q, help %q; want exit 0 and help starting %q",
					file, prog, args, code, errb.String(), out.String(), usage)
			}
		}
	}
	if checked == 0 {
		t.Errorf("no command line of a Petrel program found in %d files", len(files))
	}
}
