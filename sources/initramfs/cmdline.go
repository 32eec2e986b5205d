package initramfs

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// ErrCmdline is wrapped by errors about the kernel command line.
var ErrCmdline = errors.New("invalid kernel command line")

// Cmdline holds the kernel command line parameters /init acts on.
type Cmdline struct {
	DMCreate   string   // value of dm-mod.create=, quotes removed
	Root       string   // root=, e.g. /dev/dm-0, /dev/mapper/root or PARTUUID=<uuid>
	RootFSType string   // rootfstype=, may list several types separated by commas
	RootFlags  string   // rootflags=, passed to mount(2) as data
	Init       string   // init=, the program to execute in the new root
	InitArgs   []string // arguments after "--", passed to init
	// Enforcing is enforcing= ("" when absent): it overrides the SELinux
	// mode of /etc/selinux/config, as it does for systemd.
	Enforcing string
	// Mounts are the petrel.mount= parameters, in order: file systems that
	// /init mounts below the new root before it switches to it.
	Mounts []Mount
}

// Mount is one petrel.mount=SOURCE:TARGET:FSTYPE[:OPTIONS] parameter.
// SOURCE is a device spec (PARTUUID=, PARTLABEL=, /dev/...) or, for FSTYPE
// "bind", a directory of the new root, which /init creates; TARGET is an
// absolute path in the new root, created if missing; OPTIONS are mount
// options (nodev, nosuid, noexec, noatime, ro; others go to the file
// system as data).
type Mount struct {
	Source, Target, FSType, Options string
}

// parseMount parses the value of one petrel.mount= parameter.
func parseMount(v string) (Mount, error) {
	f := strings.Split(v, ":")
	if len(f) < 3 || len(f) > 4 {
		return Mount{}, fmt.Errorf("%w: petrel.mount=%q: expected SOURCE:TARGET:FSTYPE[:OPTIONS]", ErrCmdline, v)
	}
	m := Mount{Source: f[0], Target: f[1], FSType: f[2]}
	if len(f) == 4 {
		m.Options = f[3]
	}
	switch {
	case m.Source == "":
		return Mount{}, fmt.Errorf("%w: petrel.mount=%q: empty SOURCE", ErrCmdline, v)
	case !strings.HasPrefix(m.Target, "/") || path.Clean(m.Target) != m.Target || m.Target == "/":
		return Mount{}, fmt.Errorf("%w: petrel.mount=%q: TARGET must be a clean absolute path other than /", ErrCmdline, v)
	case m.FSType == "":
		return Mount{}, fmt.Errorf("%w: petrel.mount=%q: empty FSTYPE", ErrCmdline, v)
	case m.FSType == "bind" && (!strings.HasPrefix(m.Source, "/") || path.Clean(m.Source) != m.Source || m.Source == "/"):
		return Mount{}, fmt.Errorf("%w: petrel.mount=%q: a bind SOURCE must be a clean absolute path other than /", ErrCmdline, v)
	case m.FSType == "bind" && m.Options != "":
		return Mount{}, fmt.Errorf("%w: petrel.mount=%q: a bind mount takes no OPTIONS", ErrCmdline, v)
	}
	return m, nil
}

// ParseCmdline parses the contents of /proc/cmdline. Words are separated by
// white space; double quotes group words and are removed, as the kernel's
// own parser does for `dm-mod.create="..."` and `"dm-mod.create=..."`. Every
// word after a lone "--" is an argument for init. root= and dm-mod.create=
// may appear at most once each: which of two the kernel or another reader
// would take cannot be told, so a second one is refused. For the other
// parameters a later one overrides an earlier one.
func ParseCmdline(s string) (Cmdline, error) {
	words, err := splitCmdline(s)
	if err != nil {
		return Cmdline{}, err
	}
	var c Cmdline
	seen := map[string]int{}
	for i, w := range words {
		if w == "--" {
			c.InitArgs = append([]string{}, words[i+1:]...)
			break
		}
		key, val, _ := strings.Cut(w, "=")
		if key == "dm-mod.create" || key == "root" {
			if seen[key]++; seen[key] == 2 {
				return Cmdline{}, fmt.Errorf("%w: %s= given more than once; exactly one is accepted, so that the root cannot be swapped by a later parameter", ErrCmdline, key)
			}
		}
		switch key {
		case "dm-mod.create":
			c.DMCreate = val
		case "root":
			c.Root = val
		case "rootfstype":
			c.RootFSType = val
		case "rootflags":
			c.RootFlags = val
		case "init":
			c.Init = val
		case "enforcing":
			c.Enforcing = val
		case "petrel.mount":
			m, err := parseMount(val)
			if err != nil {
				return Cmdline{}, err
			}
			c.Mounts = append(c.Mounts, m)
		}
	}
	if c.Init != "" && !strings.HasPrefix(c.Init, "/") {
		return Cmdline{}, fmt.Errorf("%w: init=%q: expected an absolute path", ErrCmdline, c.Init)
	}
	return c, nil
}

// splitCmdline splits s into words the way the kernel's next_arg does,
// dropping the quote characters.
func splitCmdline(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, inQuote := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			inWord = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n' || r == '\r'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == 0:
			return nil, fmt.Errorf("%w: contains a NUL byte", ErrCmdline)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("%w: unbalanced double quote", ErrCmdline)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
