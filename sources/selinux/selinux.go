package selinux

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Paths of a running host.
const (
	// FS is where selinuxfs is mounted.
	FS = "/sys/fs/selinux"
	// ConfigPath is the policy configuration.
	ConfigPath = "/etc/selinux/config"
	// Xattr holds a file's label.
	Xattr = "security.selinux"
)

// Modes of SELINUX= in the configuration.
const (
	Enforcing  = "enforcing"
	Permissive = "permissive"
	Disabled   = "disabled"
)

// ErrConfig is wrapped by every error about the configuration file.
var ErrConfig = errors.New("invalid SELinux configuration")

// Config is /etc/selinux/config.
type Config struct {
	// Mode is SELINUX=: Enforcing, Permissive or Disabled.
	Mode string
	// Type is SELINUXTYPE=, the policy's directory under /etc/selinux.
	Type string
}

// ParseConfig reads a configuration: KEY=VALUE lines, # comments and blank
// lines. SELINUX= and SELINUXTYPE= are required; other keys are ignored,
// as libselinux ignores them. name is used in errors.
func ParseConfig(r io.Reader, name string) (Config, error) {
	var c Config
	var errs []error
	err := eachLine(r, name, func(n int, line string) {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("%w: %s:%d: %q is not KEY=VALUE", ErrConfig, name, n, line))
			return
		}
		v = strings.Trim(strings.TrimSpace(v), `"`)
		switch strings.TrimSpace(k) {
		case "SELINUX":
			switch v {
			case Enforcing, Permissive, Disabled:
				c.Mode = v
			default:
				errs = append(errs, fmt.Errorf("%w: %s:%d: SELINUX=%q: expected enforcing, permissive or disabled", ErrConfig, name, n, v))
			}
		case "SELINUXTYPE":
			if v == "" || strings.ContainsAny(v, "/.") {
				errs = append(errs, fmt.Errorf("%w: %s:%d: SELINUXTYPE=%q: expected a directory name", ErrConfig, name, n, v))
			}
			c.Type = v
		}
	})
	if err != nil {
		return c, err
	}
	if c.Mode == "" && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%w: %s: no SELINUX=", ErrConfig, name))
	}
	if c.Type == "" && c.Mode != Disabled && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%w: %s: no SELINUXTYPE=", ErrConfig, name))
	}
	return c, errors.Join(errs...)
}

// eachLine calls fn with every line of r that is not blank or a #
// comment, trimmed, and its 1-based number; name is used in errors.
func eachLine(r io.Reader, name string, fn func(n int, line string)) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			fn(n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// ReadConfig reads the configuration file path.
func ReadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("read SELinux configuration: %w", err)
	}
	defer f.Close()
	return ParseConfig(f, path)
}

// Enforce decides the mode to boot in as libselinux does: enforcing= on
// the kernel command line ("" when absent) wins over the configuration.
func Enforce(c Config, cmdlineEnforcing string) bool {
	if cmdlineEnforcing != "" {
		n, err := strconv.Atoi(cmdlineEnforcing)
		return err == nil && n != 0
	}
	return c.Mode == Enforcing
}

// PolicyFile returns the compiled policy of the configuration below etc
// (an /etc directory): the policy.N of /etc/selinux/<type>/policy with
// the highest N not above maxVersion, the newest the kernel reads.
func PolicyFile(etc string, c Config, maxVersion int) (string, error) {
	dir := filepath.Join(etc, "selinux", c.Type, "policy")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("find the compiled SELinux policy: %w", err)
	}
	best, path := -1, ""
	for _, e := range ents {
		v, ok := strings.CutPrefix(e.Name(), "policy.")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n > maxVersion || n <= best {
			continue
		}
		best, path = n, filepath.Join(dir, e.Name())
	}
	if path == "" {
		return "", fmt.Errorf("find the compiled SELinux policy: no policy.N with N <= %d (the kernel's newest) in %s", maxVersion, dir)
	}
	return path, nil
}

// Kernel is the selinuxfs of a running kernel.
type Kernel struct {
	// FS is the mount point of selinuxfs (FS on a host).
	FS string
}

// Enabled reports whether the kernel runs SELinux (selinuxfs is mounted).
func (k Kernel) Enabled() bool {
	_, err := os.Stat(filepath.Join(k.FS, "enforce"))
	return err == nil
}

// PolicyVersion returns the newest policy version the kernel reads.
func (k Kernel) PolicyVersion() (int, error) {
	b, err := os.ReadFile(filepath.Join(k.FS, "policyvers"))
	if err != nil {
		return 0, fmt.Errorf("read the kernel's SELinux policy version: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("read the kernel's SELinux policy version: %q is not a number", b)
	}
	return n, nil
}

// Load loads the compiled policy in the file path.
func (k Kernel) Load(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("load SELinux policy: %w", err)
	}
	if err := os.WriteFile(filepath.Join(k.FS, "load"), b, 0); err != nil {
		return fmt.Errorf("load SELinux policy %s: %w", path, err)
	}
	return nil
}

// SetEnforce sets the mode: enforcing or permissive.
func (k Kernel) SetEnforce(on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	if err := os.WriteFile(filepath.Join(k.FS, "enforce"), []byte(v), 0); err != nil {
		return fmt.Errorf("set SELinux enforce to %s: %w", v, err)
	}
	return nil
}

// Enforcing reads the mode.
func (k Kernel) Enforcing() (bool, error) {
	b, err := os.ReadFile(filepath.Join(k.FS, "enforce"))
	if err != nil {
		return false, fmt.Errorf("read SELinux mode: %w", err)
	}
	return strings.TrimSpace(string(b)) == "1", nil
}

// CurrentContext reads the context of the calling process from procfs
// (proc is /proc on a host).
func CurrentContext(proc string) (string, error) {
	b, err := os.ReadFile(filepath.Join(proc, "self", "attr", "current"))
	if err != nil {
		return "", fmt.Errorf("read own SELinux context: %w", err)
	}
	return string(bytes.TrimRight(b, "\x00\n")), nil
}

// Type returns the type field of a context "user:role:type:level".
func Type(context string) string {
	f := strings.SplitN(context, ":", 4)
	if len(f) < 3 {
		return ""
	}
	return f[2]
}
