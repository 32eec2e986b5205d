package ociimage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// An image NAME is defined by packages/NAME-container/image.toml, beside
// the package that holds the image's own files (the top level of the
// project is fixed).
const (
	pkgDir    = "packages"
	pkgSuffix = "-container"
)

// Path returns the definition file of image name under root.
func Path(root, name string) string {
	return filepath.Join(root, pkgDir, name+pkgSuffix, "image.toml")
}

// ErrInvalid marks a definition that cannot be used.
var ErrInvalid = errors.New("invalid container image definition")

// Definition is packages/NAME-container/image.toml.
type Definition struct {
	Name string `toml:"-"`
	// Path is the file it was read from.
	Path       string            `toml:"-"`
	Packages   []string          `toml:"packages"`
	Entrypoint []string          `toml:"entrypoint"`
	Cmd        []string          `toml:"cmd"`
	Env        []string          `toml:"env"`
	WorkingDir string            `toml:"working-dir"`
	Labels     map[string]string `toml:"labels"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)

// Load reads and checks the definition of image name under root. Every
// problem is reported at once, each with the file and the field.
func Load(root, name string) (*Definition, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("%w: name %q: expected lower-case letters and digits separated by '.', '_' or '-'", ErrInvalid, name)
	}
	path := Path(root, name)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: no image %q: %s does not exist (images: %s)", ErrInvalid, name, path, strings.Join(List(root), ", "))
		}
		return nil, fmt.Errorf("read container image definition: %w", err)
	}
	return Parse(path, name, data)
}

// Parse decodes and checks a definition read from path.
func Parse(path, name string, data []byte) (*Definition, error) {
	d := &Definition{Name: name, Path: path}
	md, err := toml.Decode(string(data), d)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
	}
	var problems []string
	for _, k := range md.Undecoded() {
		problems = append(problems, fmt.Sprintf("%s: unknown field (expected packages, entrypoint, cmd, env, working-dir, labels)", k))
	}
	if len(d.Packages) == 0 {
		problems = append(problems, "packages: expected at least one package")
	}
	if len(d.Entrypoint) == 0 && len(d.Cmd) == 0 {
		problems = append(problems, "entrypoint: expected an entrypoint or a cmd")
	}
	for i, e := range d.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			problems = append(problems, fmt.Sprintf("env.%d: expected NAME=VALUE, got %q", i, e))
		}
	}
	if d.WorkingDir != "" && !strings.HasPrefix(d.WorkingDir, "/") {
		problems = append(problems, fmt.Sprintf("working-dir: expected an absolute path, got %q", d.WorkingDir))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s:\n  %s", ErrInvalid, path, strings.Join(problems, "\n  "))
	}
	return d, nil
}

// List returns the names of the images defined under root, sorted.
func List(root string) []string {
	matches, _ := filepath.Glob(filepath.Join(root, pkgDir, "*"+pkgSuffix, "image.toml"))
	var names []string
	for _, m := range matches {
		names = append(names, strings.TrimSuffix(filepath.Base(filepath.Dir(m)), pkgSuffix))
	}
	return names
}
