package builder

import (
	"fmt"
	"strings"
)

// tailLines is how many lines of a failed build's log an error shows.
const tailLines = 20

// BuildError reports a package whose rpmbuild failed.
type BuildError struct {
	// Package is the package name ("kernel").
	Package string
	// Log is the path of the full build log.
	Log string
	// Tail holds the last lines of the log.
	Tail []string
	// Err is the error of the failed command.
	Err error
}

func (e *BuildError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "build package %q: %s\nlog: %s", e.Package, e.Err, e.Log)
	if len(e.Tail) > 0 {
		fmt.Fprintf(&b, "\nlast %d lines of the log:\n", len(e.Tail))
		for _, l := range e.Tail {
			b.WriteString("  | ")
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func (e *BuildError) Unwrap() error { return e.Err }
