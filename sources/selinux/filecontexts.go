package selinux

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"
)

// ErrFileContexts is wrapped by every error about a file_contexts file.
var ErrFileContexts = errors.New("invalid file_contexts")

// FileContexts is a parsed file_contexts file: which label a path gets.
// The image build labels the file systems it makes with it; on the host,
// systemd and udev read the same file through libselinux.
type FileContexts struct {
	specs []spec
}

type spec struct {
	re      *regexp.Regexp
	exact   bool        // no regular expression characters
	mode    fs.FileMode // file type (fs.ModeType bits), or modeAny
	context string      // "" for <<none>>: leave the file alone
}

// modeAny matches every file type.
const modeAny fs.FileMode = 1<<32 - 1

// fileTypes maps file_contexts' file type fields to file modes.
var fileTypes = map[string]fs.FileMode{
	"--": 0, "-d": fs.ModeDir, "-l": fs.ModeSymlink, "-s": fs.ModeSocket,
	"-p": fs.ModeNamedPipe, "-b": fs.ModeDevice, "-c": fs.ModeDevice | fs.ModeCharDevice,
}

// ParseFileContexts reads a file_contexts file: "REGEX [TYPE] CONTEXT"
// lines, # comments and blank lines; name is used in errors, which name
// every bad line.
func ParseFileContexts(r io.Reader, name string) (*FileContexts, error) {
	fc := &FileContexts{}
	var errs []error
	err := eachLine(r, name, func(n int, line string) {
		f := strings.Fields(line)
		s := spec{mode: modeAny}
		switch len(f) {
		case 2:
		case 3:
			m, ok := fileTypes[f[1]]
			if !ok {
				errs = append(errs, fmt.Errorf("%w: %s:%d: file type %q: expected one of -- -d -l -s -p -b -c", ErrFileContexts, name, n, f[1]))
				return
			}
			s.mode = m
		default:
			errs = append(errs, fmt.Errorf("%w: %s:%d: expected REGEX [TYPE] CONTEXT, got %d fields", ErrFileContexts, name, n, len(f)))
			return
		}
		if ctx := f[len(f)-1]; ctx != "<<none>>" {
			if strings.Count(ctx, ":") < 3 {
				errs = append(errs, fmt.Errorf("%w: %s:%d: context %q: expected user:role:type:level", ErrFileContexts, name, n, ctx))
				return
			}
			s.context = ctx
		}
		re, err := regexp.Compile("^(?:" + f[0] + ")$")
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s:%d: regular expression %q: %w", ErrFileContexts, name, n, f[0], err))
			return
		}
		s.re, s.exact = re, regexp.QuoteMeta(f[0]) == f[0]
		fc.specs = append(fc.specs, s)
	})
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return fc, nil
}

// ReadFileContexts reads the file_contexts file path.
func ReadFileContexts(path string) (*FileContexts, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read file contexts: %w", err)
	}
	defer f.Close()
	return ParseFileContexts(f, path)
}

// Lookup returns the label of the absolute path for a file of the given
// type (fs.FileMode type bits): as libselinux decides, the last matching
// line wins, and a line without regular expression characters wins over
// those with. ok is false when no line matches or the match is <<none>>.
func (fc *FileContexts) Lookup(path string, mode fs.FileMode) (context string, ok bool) {
	mode &= fs.ModeType
	var best *spec
	for i := range fc.specs {
		s := &fc.specs[i]
		if s.mode != modeAny && s.mode != mode {
			continue
		}
		if best != nil && best.exact && !s.exact {
			continue
		}
		if s.re.MatchString(path) {
			best = s
		}
	}
	if best == nil || best.context == "" {
		return "", false
	}
	return best.context, true
}
