package project

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

var (
	semver     = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	osName     = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	nameRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]*$`)
	sha512RE   = regexp.MustCompile(`^[0-9a-f]{128}$`)
	dottedNum  = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)
	debPackage = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]+$`)
	debVersion = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~:-]*$`)
)

// Arches returns the supported target architectures.
func Arches() []string { return []string{"x86_64", "aarch64"} }

func validName(s string) bool { return nameRE.MatchString(s) }

// decodeManifest decodes and validates Twoliter.toml.
func decodeManifest(file string, data []byte) (Manifest, []error) {
	var m Manifest
	errs, ok := decode(file, data, &m)
	if !ok {
		return m, errs
	}
	var p problems
	if m.SchemaVersion != 1 {
		p.addf(file, "schema-version: expected 1, got %d", m.SchemaVersion)
	}
	if !semver.MatchString(m.ReleaseVersion) {
		p.addf(file, "release-version: expected a semantic version such as \"1.2.3\", got %q", m.ReleaseVersion)
	}
	if !osName.MatchString(m.OS.Name) {
		p.addf(file, "os.name: expected lower-case letters, digits and '-', starting with a letter, got %q", m.OS.Name)
	}
	if m.OS.PrettyName == "" {
		p.addf(file, "os.pretty-name: missing")
	}
	if m.OS.Vendor == "" {
		p.addf(file, "os.vendor: missing")
	}
	for _, f := range []struct{ key, v string }{
		{"os.home-url", m.OS.HomeURL}, {"os.support-url", m.OS.SupportURL}, {"os.bug-report-url", m.OS.BugReportURL},
	} {
		if f.v != "" && !httpURL(f.v) {
			p.addf(file, "%s: expected an http or https URL, got %q", f.key, f.v)
		}
	}
	for i, t := range m.SDK.Tools {
		key := fmt.Sprintf("sdk.tool[%d]", i)
		switch {
		case t.Command == "" && t.File == "":
			p.addf(file, "%s: missing command (or file)", key)
		case t.Command != "" && t.File != "":
			p.addf(file, "%s: set command or file, not both", key)
		case t.Command != "" && strings.ContainsAny(t.Command, "/ \t"):
			p.addf(file, "%s.command: expected a command name looked up in PATH, got %q", key, t.Command)
		case t.File != "" && !filepath.IsAbs(t.File):
			p.addf(file, "%s.file: expected an absolute path, got %q", key, t.File)
		}
		if t.Package == "" {
			p.addf(file, "%s.package: missing (the Debian package that provides %s)", key, t.Name())
		}
		if t.MinVersion != "" && !dottedNum.MatchString(t.MinVersion) {
			p.addf(file, "%s.min-version: expected numbers separated by dots, got %q", key, t.MinVersion)
		}
		if t.File != "" && (t.MinVersion != "" || len(t.VersionArgs) > 0) {
			p.addf(file, "%s: min-version and version-args need a command, not a file", key)
		}
	}
	for i, k := range m.Kits {
		if k.Name == "" {
			p.addf(file, "kit[%d].name: missing", i)
		}
		if k.Version != "" && !semver.MatchString(k.Version) {
			p.addf(file, "kit[%d].version: expected a semantic version, got %q", i, k.Version)
		}
	}
	return m, append(errs, p.errs...)
}

// decodeMakefile decodes and validates Makefile.toml.
func decodeMakefile(file string, data []byte) (Makefile, []error) {
	var m Makefile
	errs, ok := decode(file, data, &m)
	if !ok {
		return m, errs
	}
	var p problems
	for _, name := range sortedKeys(m.Tasks) {
		t := m.Tasks[name]
		if t.Command == "" && len(t.Dependencies) == 0 {
			p.addf(file, "tasks.%s: needs a command or dependencies", name)
		}
		for i, d := range t.Dependencies {
			if _, ok := m.Tasks[d]; !ok {
				p.addf(file, "tasks.%s.dependencies[%d]: unknown task %q", name, i, d)
			}
		}
	}
	for _, name := range sortedKeys(m.Tasks) {
		if cycle := taskCycle(m.Tasks, name, nil); cycle != nil {
			p.addf(file, "tasks.%s: dependency cycle: %s", name, strings.Join(cycle, " -> "))
			break
		}
	}
	return m, append(errs, p.errs...)
}

// taskCycle returns a dependency cycle that starts at name, or nil.
func taskCycle(tasks map[string]Task, name string, stack []string) []string {
	if i := slices.Index(stack, name); i >= 0 {
		return append(slices.Clone(stack[i:]), name)
	}
	stack = append(stack, name)
	for _, d := range tasks[name].Dependencies {
		if _, ok := tasks[d]; !ok {
			continue
		}
		if c := taskCycle(tasks, d, stack); c != nil {
			return c
		}
	}
	return nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// checkPackageManifest validates package.toml and fills default paths.
func (l *loader) checkPackageManifest(file string, pkg *Package) {
	for i, g := range pkg.SourceGroups {
		l.checkDir(file, fmt.Sprintf("source-groups[%d]", i), "sources", g)
	}
	for i, c := range pkg.GoCommands {
		l.checkDir(file, fmt.Sprintf("go-commands[%d]", i), "cmd", c)
	}
	paths := map[string]int{}
	for i := range pkg.ExternalFiles {
		f := &pkg.ExternalFiles[i]
		key := fmt.Sprintf("external-files[%d]", i)
		switch {
		case f.URL == "" && f.Debian == "":
			l.probs.addf(file, "%s: set url or debian", key)
		case f.URL != "" && f.Debian != "":
			l.probs.addf(file, "%s: set url or debian, not both", key)
		case f.URL != "":
			if !httpURL(f.URL) {
				l.probs.addf(file, "%s.url: expected an http or https URL, got %q", key, f.URL)
			} else if f.Path == "" {
				u, _ := url.Parse(f.URL)
				f.Path = path.Base(u.Path)
			}
		default:
			name, version, ok := strings.Cut(f.Debian, "=")
			if !ok || !debPackage.MatchString(name) || !debVersion.MatchString(version) {
				l.probs.addf(file, "%s.debian: expected \"name=version\" of a Debian package, got %q", key, f.Debian)
			}
			if f.ForceUpstream {
				l.probs.addf(file, "%s.force-upstream: only applies to url files", key)
			}
		}
		if !sha512RE.MatchString(f.SHA512) {
			l.probs.addf(file, "%s.sha512: expected 128 lower-case hex digits, got %q", key, f.SHA512)
		}
		if f.Path != "" {
			if f.Path == "." || f.Path == "/" || strings.ContainsAny(f.Path, "/\\") || strings.HasPrefix(f.Path, ".") {
				l.probs.addf(file, "%s.path: expected a plain file name, got %q", key, f.Path)
			}
			if j, dup := paths[f.Path]; dup {
				l.probs.addf(file, "%s.path: %q is also the path of external-files[%d]", key, f.Path, j)
			}
			paths[f.Path] = i
		}
	}
}

// checkDir checks that root/top/name is a directory.
func (l *loader) checkDir(file, key, top, name string) {
	if name == "" || strings.Contains(name, "..") || path.IsAbs(name) {
		l.probs.addf(file, "%s: expected a directory under %s/, got %q", key, top, name)
		return
	}
	st, err := os.Stat(filepath.Join(l.p.Root, top, filepath.FromSlash(name)))
	if err != nil || !st.IsDir() {
		l.probs.addf(file, "%s: %s/%s is not a directory", key, top, name)
	}
}

// checkSpec checks the spec against its directory and its source files.
// The name check needs a valid os.name, the source check a valid
// package.toml (manifestOK).
func (l *loader) checkSpec(pkg *Package, macros map[string]string, manifestOK bool) {
	s := pkg.Spec
	if want := macros["_cross_os"] + pkg.Name; osName.MatchString(l.p.Manifest.OS.Name) && s.Name != want {
		l.probs.add(fmt.Errorf("%s: Name %q does not match the package directory: expected \"%%{_cross_os}%s\" (%q)", s.Path, s.Name, pkg.Name, want))
	}
	local := map[string]bool{}
	for _, f := range pkg.LocalFiles {
		local[f] = true
	}
	for _, src := range s.Sources {
		if !manifestOK {
			break
		}
		v := src.Value
		if strings.ContainsAny(v, "/%") || local[v] || externalFile(pkg.ExternalFiles, v) {
			continue
		}
		l.probs.add(fmt.Errorf("%s:%d: %s%d: missing source file %q: not in packages/%s/ and not an external file of package.toml",
			s.Path, src.Line, src.Tag, src.Number, v, pkg.Name))
	}
}

// externalFile reports whether name is provided by one of files: its path,
// or for a Debian pin without a path, "<name>_<version>_<arch>.deb".
func externalFile(files []ExternalFile, name string) bool {
	for _, f := range files {
		if f.Path == name {
			return true
		}
		if f.Path == "" && f.Debian != "" {
			pkg, version, _ := strings.Cut(f.Debian, "=")
			if _, v, ok := strings.Cut(version, ":"); ok {
				version = v
			}
			if strings.HasPrefix(name, pkg+"_"+version+"_") && strings.HasSuffix(name, ".deb") {
				return true
			}
		}
	}
	return false
}
