package fsimage

import (
	"errors"
	"fmt"
	"os/exec"
)

// TooSmallError reports a tree that does not fit its target.
type TooSmallError struct {
	What      string // e.g. "root filesystem"
	Target    string // e.g. "ROOT-A"
	NeedBytes int64  // estimated size the tree needs
	HaveBytes int64  // size of the target
}

func (e *TooSmallError) Error() string {
	return fmt.Sprintf("%s needs %d MiB but %s is %d MiB", e.What, ceilMiB(e.NeedBytes), e.Target, e.HaveBytes>>20)
}

func ceilMiB(n int64) int64 { return (n + 1<<20 - 1) >> 20 }

// ToolError is a failed external tool run, with its output.
type ToolError struct {
	Tool   string
	Args   []string
	Output string
	Err    error
}

func (e *ToolError) Error() string {
	return fmt.Sprintf("run %s %v: %v: %s", e.Tool, e.Args, e.Err, e.Output)
}

func (e *ToolError) Unwrap() error { return e.Err }

// ErrToolMissing is matched by errors for a missing external tool.
var ErrToolMissing = errors.New("tool not installed")

// toolPackages names the Debian package of every tool this package runs.
var toolPackages = map[string]string{
	"mkfs.ext4":  "e2fsprogs",
	"debugfs":    "e2fsprogs",
	"resize2fs":  "e2fsprogs",
	"mkfs.erofs": "erofs-utils",
}

// lookTool finds tool in PATH or says which Debian package provides it.
func lookTool(tool string) (string, error) {
	p, err := exec.LookPath(tool)
	if err != nil {
		return "", fmt.Errorf("find %s (install the Debian package %s): %w", tool, toolPackages[tool], ErrToolMissing)
	}
	return p, nil
}
