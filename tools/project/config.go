package project

import (
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Names of the BUILDSYS_* variables read by Config.
const (
	EnvVariant          = "BUILDSYS_VARIANT"
	EnvArch             = "BUILDSYS_ARCH"
	EnvJobs             = "BUILDSYS_JOBS"
	EnvBuildDir         = "BUILDSYS_BUILD_DIR"
	EnvLookasideCache   = "BUILDSYS_LOOKASIDE_CACHE"
	EnvUpstreamFallback = "BUILDSYS_UPSTREAM_SOURCE_FALLBACK"
)

// Overrides are command-line values that win over the environment and
// Makefile.toml. A zero field is not set.
type Overrides struct {
	Variant, Arch string
	Jobs          int
}

// Config returns the effective build configuration: Makefile.toml [env],
// overridden by the BUILDSYS_* variables that env returns non-empty,
// overridden by o. Errors name the variable or flag and wrap
// ErrInvalidInput. The variant is not checked against the project (a
// package build needs none); use Project.Variant.
func (p *Project) Config(env func(string) string, o Overrides) (Config, error) {
	get := func(key string) (value, source string) {
		if v := env(key); v != "" {
			return v, "environment variable " + key
		}
		return p.Make.Env[key], "Makefile.toml env." + key
	}
	var probs problems
	var c Config

	c.Variant, _ = get(EnvVariant)
	if o.Variant != "" {
		c.Variant = o.Variant
	}
	arch, src := get(EnvArch)
	if o.Arch != "" {
		arch, src = o.Arch, "flag --arch"
	}
	if arch == "" {
		arch, src = HostArch(), "host architecture"
	}
	if !slices.Contains(Arches(), arch) {
		probs.add(fmt.Errorf("%s: unknown architecture %q (valid: %s)", src, arch, strings.Join(Arches(), ", ")))
	}
	c.Arch = arch

	switch jobs, src := get(EnvJobs); {
	case o.Jobs < 0:
		probs.add(fmt.Errorf("flag --jobs: expected a positive number, got %d", o.Jobs))
	case o.Jobs > 0:
		c.Jobs = o.Jobs
	case jobs != "":
		n, err := strconv.Atoi(jobs)
		if err != nil || n < 1 {
			probs.add(fmt.Errorf("%s: expected a positive integer, got %q", src, jobs))
		}
		c.Jobs = n
	default:
		c.Jobs = runtime.NumCPU()
	}

	dir, _ := get(EnvBuildDir)
	if dir == "" {
		dir = "build"
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(p.Root, dir)
	}
	c.BuildDir = filepath.Clean(dir)

	lookaside, src := get(EnvLookasideCache)
	if lookaside != "" {
		u, err := url.Parse(lookaside)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") {
			probs.add(fmt.Errorf("%s: expected an http, https or file URL, got %q", src, lookaside))
		}
	}
	c.LookasideURL = strings.TrimRight(lookaside, "/")

	if fb, src := get(EnvUpstreamFallback); fb != "" {
		v, err := strconv.ParseBool(fb)
		if err != nil {
			probs.add(fmt.Errorf("%s: expected true or false, got %q", src, fb))
		}
		c.UpstreamFallback = v
	}
	if err := probs.err(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Env returns the configuration as BUILDSYS_* "KEY=value" pairs, for the
// environment of tasks and build steps.
func (c Config) Env() []string {
	return []string{
		EnvVariant + "=" + c.Variant,
		EnvArch + "=" + c.Arch,
		EnvJobs + "=" + strconv.Itoa(c.Jobs),
		EnvBuildDir + "=" + c.BuildDir,
		EnvLookasideCache + "=" + c.LookasideURL,
		EnvUpstreamFallback + "=" + strconv.FormatBool(c.UpstreamFallback),
	}
}

// HostArch returns the RPM name of the host architecture ("x86_64",
// "aarch64"), or GOARCH for others.
func HostArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

// RPMName returns the RPM name of the package pkg: "<os.name>-<pkg>".
func (p *Project) RPMName(pkg string) string { return p.Manifest.OS.Name + "-" + pkg }

// Macros returns the RPM macros of the project for the default architecture
// (Makefile.toml BUILDSYS_ARCH, else the host's). Load parses specs with them.
func (p *Project) Macros() map[string]string {
	arch := p.Make.Env[EnvArch]
	if arch == "" {
		arch = HostArch()
	}
	return p.MacrosFor(arch)
}

// MacrosFor returns the RPM macros of the project for arch:
// _cross_os ("petrel-"), _cross_vendor, _cross_arch, _cross_triple,
// _cross_target, _cross_go_arch, _cross_karch, _cross_efi_arch,
// _cross_pretty_name and _cross_release_version.
func (p *Project) MacrosFor(arch string) map[string]string {
	name := p.Manifest.OS.Name
	goArch, karch, efi := arch, arch, arch
	switch arch {
	case "x86_64":
		goArch, karch, efi = "amd64", "x86", "x64"
	case "aarch64":
		goArch, karch, efi = "arm64", "arm64", "aa64"
	}
	triple := arch + "-" + name + "-linux"
	return map[string]string{
		"_cross_os":              name + "-",
		"_cross_vendor":          name,
		"_cross_arch":            arch,
		"_cross_triple":          triple,
		"_cross_target":          triple + "-gnu",
		"_cross_go_arch":         goArch,
		"_cross_karch":           karch,
		"_cross_efi_arch":        efi,
		"_cross_pretty_name":     p.Manifest.OS.PrettyName,
		"_cross_release_version": p.Manifest.ReleaseVersion,
	}
}
