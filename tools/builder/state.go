package builder

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/petrel-os/petrel/sources/outfile"
)

// state is what a finished build leaves in
// <BuildDir>/state/<arch>/packages/<pkg>/key: the cache key and the names
// of the RPMs it produced in <BuildDir>/rpms/<pkg>/.
type state struct {
	Key  string
	RPMs []string
}

func (s state) marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "key %s\n", s.Key)
	for _, r := range s.RPMs {
		fmt.Fprintf(&b, "rpm %s\n", r)
	}
	return b.Bytes()
}

func readState(path string) (state, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return state{}, err
	}
	return parseState(path, data)
}

// parseState parses the key file data read from path.
func parseState(path string, data []byte) (state, error) {
	var s state
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		kind, val, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "key":
			s.Key = val
		case "rpm":
			if val == "" || strings.ContainsAny(val, "/\x00") {
				return state{}, fmt.Errorf("read %q: bad rpm entry %q", path, val)
			}
			s.RPMs = append(s.RPMs, val)
		}
	}
	if s.Key == "" {
		return state{}, fmt.Errorf("read %q: no key", path)
	}
	return s, nil
}

// writeState records s at path (in a directory that exists) so that
// readers see the old or the new state, never a mix.
func writeState(path string, s state) error {
	return outfile.WriteFile(path, s.marshal(), outfile.Options{})
}
