// Package multicall runs, in the calling process, a command that names an
// agent of Petrel's multi-call binary: /usr/bin/petrel, with a link named
// after each agent (package agent). Under QEMU's emulation every start of
// that binary costs 0.1-0.3 s of boot, so an agent that runs another
// agent's command line (settings-applier its restart commands, sundog its
// setting generators) calls the agent instead when the command's program
// is such a link.
package multicall

import (
	"context"
	"io"
	"os"
	"path/filepath"
)

// Program is an agent as package agent runs it: args without the program
// name; it returns the exit code.
type Program func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Programs finds an agent by its command name.
type Programs func(name string) (Program, bool)

// Find returns the agent that path runs when path is a link to self (this
// process's executable) named after one of p. A nil p, an empty self, or
// a path that is another program finds none.
func (p Programs) Find(self, path string) (Program, bool) {
	if p == nil || self == "" {
		return nil, false
	}
	run, ok := p(filepath.Base(path))
	if !ok {
		return nil, false
	}
	target, err := os.Stat(path)
	if err != nil {
		return nil, false
	}
	me, err := os.Stat(self)
	if err != nil || !os.SameFile(target, me) {
		return nil, false
	}
	return run, true
}
