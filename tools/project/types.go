package project

import "github.com/petrel-os/petrel/tools/spec"

// This file holds the declarative model of a Petrel project. The loaders in
// this package fill these structs from TOML and validate them; the builder,
// the graph and the image assembler only read them.

// Project is a loaded and validated Petrel project tree.
type Project struct {
	// Root is the absolute path of the directory that holds Twoliter.toml.
	Root string
	// Manifest is Twoliter.toml.
	Manifest Manifest
	// Make is Makefile.toml.
	Make Makefile
	// Packages by directory name (packages/<name>/).
	Packages map[string]*Package
	// Kits by directory name (kits/<name>/).
	Kits map[string]*Kit
	// Variants by directory name (variants/<name>/).
	Variants map[string]*Variant
	// Migrations are the steps of Manifest.Migrations, loaded and
	// checked, ordered by version.
	Migrations []MigrationStep
}

// Manifest is the project manifest, Twoliter.toml.
type Manifest struct {
	// SchemaVersion must be 1.
	SchemaVersion int `toml:"schema-version"`
	// ReleaseVersion is the semver of the OS release, e.g. "0.1.0".
	ReleaseVersion string `toml:"release-version"`
	// OS names the operating system, so that a remix can rename it.
	OS OSIdentity `toml:"os"`
	// SDK lists the host tools the build needs.
	SDK SDK `toml:"sdk"`
	// Kits are the kits the project uses, by name (kits/<name>).
	Kits []KitRef `toml:"kit"`
	// Migrations lists the settings migrations of each step between
	// releases, as upstream's Release.toml: "(FROM, TO)" = ["name", ...],
	// each name the file MigrationsDir/v<TO>/<name>.toml; an empty list
	// for a step without migrations. See docs/migrations.md.
	Migrations map[string][]string `toml:"migrations"`
	// Release lists what `buildctl release` builds.
	Release Release `toml:"release"`
}

// Release is the [release] table of Twoliter.toml.
type Release struct {
	// Variants are the variants of a release, each a variants/ directory.
	Variants []string `toml:"variants"`
}

// OSIdentity is the [os] table of Twoliter.toml.
type OSIdentity struct {
	// Name is the short, lower-case OS name: the RPM prefix ("petrel-"), the
	// os-release ID and the first word of every artifact name.
	Name string `toml:"name"`
	// PrettyName is the human name, "Petrel OS".
	PrettyName string `toml:"pretty-name"`
	// Vendor is written into every RPM's Vendor tag.
	Vendor string `toml:"vendor"`
	// HomeURL, SupportURL and BugReportURL go to os-release (optional).
	HomeURL      string `toml:"home-url"`
	SupportURL   string `toml:"support-url"`
	BugReportURL string `toml:"bug-report-url"`
}

// SDK is the set of host tools the build needs.
type SDK struct {
	Tools []Tool `toml:"tool"`
}

// Tool is one host tool: a command, the Debian package that provides it and
// the minimum version buildctl accepts.
type Tool struct {
	// Command is looked up in PATH, e.g. "rpmbuild".
	Command string `toml:"command"`
	// Package is the Debian package that provides Command, e.g. "rpm".
	Package string `toml:"package"`
	// MinVersion is the minimum upstream version, compared numerically
	// field by field ("4.18" accepts "4.18.0+dfsg-1").
	MinVersion string `toml:"min-version"`
	// VersionArgs are the arguments that make Command print its version
	// (default ["--version"]).
	VersionArgs []string `toml:"version-args"`
	// File is an absolute path that must exist, for tools that are files
	// rather than commands (firmware, GRUB modules). Exactly one of Command
	// and File is set.
	File string `toml:"file"`
}

// Name returns Command, or File for file tools.
func (t Tool) Name() string {
	if t.Command != "" {
		return t.Command
	}
	return t.File
}

// KitRef names a kit the project uses.
type KitRef struct {
	Name    string `toml:"name"`
	Version string `toml:"version"`
}

// Makefile is Makefile.toml: build defaults and named tasks.
type Makefile struct {
	// Env holds BUILDSYS_* defaults. Known keys: BUILDSYS_VARIANT,
	// BUILDSYS_ARCH, BUILDSYS_JOBS, BUILDSYS_BUILD_DIR,
	// BUILDSYS_LOOKASIDE_CACHE, BUILDSYS_UPSTREAM_SOURCE_FALLBACK.
	Env map[string]string `toml:"env"`
	// Tasks are named tasks, run with `buildctl task NAME`.
	Tasks map[string]Task `toml:"tasks"`
}

// Task is one named task of Makefile.toml.
type Task struct {
	Description  string   `toml:"description"`
	Command      string   `toml:"command"`
	Args         []string `toml:"args"`
	Dependencies []string `toml:"dependencies"`
}

// Config is the effective build configuration: Makefile.toml defaults,
// overridden by BUILDSYS_* environment variables, overridden by flags.
type Config struct {
	Variant string
	Arch    string
	Jobs    int
	// BuildDir is absolute; outputs go to BuildDir/{rpms,kits,images,logs,state,cache}.
	BuildDir string
	// LookasideURL is the base URL of the lookaside cache ("" = none).
	LookasideURL string
	// UpstreamFallback allows fetching an external file from its upstream
	// URL when the lookaside cache does not have it.
	UpstreamFallback bool
}

// Package is one packages/<name>/ directory: a spec and its manifest.
type Package struct {
	// Name is the directory name and the unprefixed package name ("kernel").
	Name string
	// Dir is the absolute package directory.
	Dir string
	// SpecPath is the absolute path of <Dir>/<Name>.spec.
	SpecPath string
	// ManifestPath is the absolute path of <Dir>/package.toml.
	ManifestPath string
	// ExternalFiles are files fetched from outside and pinned by SHA-512.
	ExternalFiles []ExternalFile
	// SourceGroups are directories under sources/ whose content the package
	// builds (first-party Go code).
	SourceGroups []string
	// GoCommands are directories under cmd/ that the package builds.
	GoCommands []string
	// GoModule says that Dir holds a Go module of its own (go.mod, go.sum,
	// among LocalFiles) whose dependencies the build needs: buildctl
	// downloads them into the host's module cache, verified against its
	// go.sum, before the sandboxed build reads that cache read-only.
	GoModule bool
	// LocalFiles are the other files of Dir (patches, units, configs),
	// relative to Dir, sorted. They are copied to SOURCES.
	LocalFiles []string
	// Spec is the parsed spec, with the macros of Project.Macros. Its Path
	// is relative to the project root ("packages/os/os.spec").
	Spec *spec.Spec
}

// ExternalFile is one [[external-files]] entry of package.toml. Exactly one
// of URL and Debian is set.
type ExternalFile struct {
	// Path is the file name in SOURCES. Defaults to the last element of URL,
	// or to the .deb file name for Debian packages.
	Path string `toml:"path"`
	// URL is the upstream URL (fetched through the lookaside cache).
	URL string `toml:"url"`
	// Debian is a Debian binary package as "name=version", fetched with apt.
	Debian string `toml:"debian"`
	// SHA512 is the lower-case hex SHA-512 of the file.
	SHA512 string `toml:"sha512"`
	// ForceUpstream skips the lookaside cache.
	ForceUpstream bool `toml:"force-upstream"`
}

// Kit is one kits/<name>/kit.toml: a versioned set of packages.
type Kit struct {
	Name     string   `toml:"name"`
	Version  string   `toml:"version"`
	Vendor   string   `toml:"vendor"`
	Packages []string `toml:"packages"`
	// Dir and Path are filled by the loader.
	Dir  string `toml:"-"`
	Path string `toml:"-"`
}

// Variant is one variants/<name>/variant.toml.
type Variant struct {
	// Name is the directory name, e.g. "metal-dev".
	Name string `toml:"-"`
	Dir  string `toml:"-"`
	Path string `toml:"-"`

	// SupportedArches, e.g. ["x86_64"].
	SupportedArches []string `toml:"supported-arches"`
	// Kits the variant consumes, by name.
	Kits []string `toml:"kits"`
	// IncludedPackages are installed in the image together with their
	// Requires closure. Each must be in one of Kits.
	IncludedPackages []string `toml:"included-packages"`
	// KernelParameters come first on the kernel command line.
	KernelParameters []string `toml:"kernel-parameters"`
	// ImageFormat is raw (default), qcow2 or vmdk.
	ImageFormat string `toml:"image-format"`
	// ImageLayout sizes the disk.
	ImageLayout ImageLayout `toml:"image-layout"`
	// ImageFeatures toggles features; see FeatureDefaults for the known ones.
	ImageFeatures map[string]bool `toml:"image-features"`
	// OVFTemplate is the OVF template for vmdk variants, relative to Dir.
	OVFTemplate string `toml:"ovf-template"`
}

// ImageLayout is the [image-layout] table of variant.toml.
type ImageLayout struct {
	// OSImageSizeGiB is 2 (default) or 4.
	OSImageSizeGiB int `toml:"os-image-size-gib"`
	// DataImageSizeGiB defaults to 1.
	DataImageSizeGiB int `toml:"data-image-size-gib"`
	// PublishImageSizeHintGiB defaults to 22.
	PublishImageSizeHintGiB int `toml:"publish-image-size-hint-gib"`
	// PartitionPlan is "split" (default) or "unified".
	PartitionPlan string `toml:"partition-plan"`
}
