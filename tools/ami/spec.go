package ami

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/petrel-os/petrel/tools/project"
)

// SpecFile is the name of a variant's AMI spec file.
const SpecFile = "ami.toml"

// ErrSpec marks a bad spec file, flag or image: bad input, exit code 2.
var ErrSpec = errors.New("bad AMI spec")

// Values and defaults of the spec.
var (
	VolumeTypes = []string{"gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"}
	BootModes   = []string{"legacy-bios", "uefi", "uefi-preferred"}
	IMDSModes   = []string{"v2.0", "optional"}
)

// DefaultName is the default AMI name: upstream's full image name.
const DefaultName = "{os}-{variant}-{arch}-{version}-{build}"

// Spec is the resolved options of one `buildctl ami`.
type Spec struct {
	// Name and Description of the AMI, with the placeholders {os},
	// {variant}, {arch}, {version} and {build} expanded by Expand.
	Name, Description string
	// VolumeType of both disks.
	VolumeType string
	// OSVolumeGiB and DataVolumeGiB are the volume sizes of the AMI's
	// block device mappings (the data disk only for the split plan).
	OSVolumeGiB, DataVolumeGiB int64
	// BootMode is legacy-bios, uefi or uefi-preferred.
	BootMode string
	// IMDSSupport is "v2.0" (instances launched from the AMI require
	// IMDSv2) or "optional" (EC2's default, IMDSv1 allowed).
	IMDSSupport string
	// TPM registers the AMI with NitroTPM v2.0.
	TPM bool
	// Tags are put on the snapshots (and the AMI's copies keep them).
	Tags map[string]string

	// Regions: the first gets the snapshots and registers the AMI, the
	// others receive copies.
	Regions []string
	// Wait until the AMI is available in every region.
	Wait bool
	// CopyJobs copies to this many regions at a time.
	CopyJobs int
	// LaunchAccounts may launch the AMI; Public lets everyone.
	LaunchAccounts []string
	Public         bool
	// SSM writes the parameters <SSMPrefix>/<variant>/<arch>/<version>/
	// image_id and image_version in every region; SSMOverwrite replaces
	// values that differ.
	SSM          bool
	SSMPrefix    string
	SSMOverwrite bool

	// origin names where each key's value came from, for errors.
	origin map[string]string
}

// Layer is one source of options: the variant's ami.toml, a --spec file
// or the command line. Nil fields are unset and leave the value below.
type Layer struct {
	Name          *string           `toml:"name"`
	Description   *string           `toml:"description"`
	VolumeType    *string           `toml:"volume-type"`
	OSVolumeGiB   *int64            `toml:"os-volume-gib"`
	DataVolumeGiB *int64            `toml:"data-volume-gib"`
	BootMode      *string           `toml:"boot-mode"`
	IMDSSupport   *string           `toml:"imds-support"`
	TPM           *bool             `toml:"tpm-support"`
	Tags          map[string]string `toml:"tags"`
	Publish       PublishLayer      `toml:"publish"`
	// Source names the layer in errors: a file, or "command line".
	Source string `toml:"-"`
}

// PublishLayer is the [publish] table.
type PublishLayer struct {
	Regions        []string `toml:"regions"`
	Wait           *bool    `toml:"wait"`
	CopyJobs       *int     `toml:"copy-jobs"`
	LaunchAccounts []string `toml:"launch-accounts"`
	Public         *bool    `toml:"public"`
	SSM            *bool    `toml:"ssm-parameters"`
	SSMPrefix      *string  `toml:"ssm-prefix"`
	SSMOverwrite   *bool    `toml:"ssm-overwrite"`
}

// LoadLayer reads a spec file. A missing file is an error unless
// optional, when it is an empty layer.
func LoadLayer(path, name string, optional bool) (Layer, error) {
	data, err := os.ReadFile(path)
	if optional && errors.Is(err, os.ErrNotExist) {
		return Layer{Source: name}, nil
	}
	if err != nil {
		return Layer{}, fmt.Errorf("%w: read spec file: %w", ErrSpec, err)
	}
	return ParseLayer(name, data)
}

// ParseLayer decodes a spec file's data; name names it in errors. Every
// syntax error and unknown key is reported.
func ParseLayer(name string, data []byte) (Layer, error) {
	l := Layer{Source: name}
	errs, _ := project.DecodeTOML(name, data, &l)
	if len(errs) > 0 {
		return l, fmt.Errorf("%w: %w", ErrSpec, errors.Join(errs...))
	}
	return l, nil
}

// Defaults are the values below every layer. The volume sizes come from
// the variant (its publish sizes) and the region from the AWS
// configuration.
func Defaults(region string, osGiB, dataGiB int64) Spec {
	s := Spec{Name: DefaultName, Description: "{os} {variant} {version} ({arch}, build {build})", VolumeType: "gp2",
		OSVolumeGiB: osGiB, DataVolumeGiB: dataGiB, BootMode: "uefi-preferred", IMDSSupport: "v2.0",
		CopyJobs: 4, SSMPrefix: "/petrel", origin: map[string]string{}}
	if region != "" {
		s.Regions = []string{region}
	}
	return s
}

// Apply lays l over s, recording where each value came from.
func (s *Spec) Apply(l Layer) {
	if s.origin == nil {
		s.origin = map[string]string{}
	}
	set := func(key string, ok bool) bool {
		if ok {
			s.origin[key] = l.Source
		}
		return ok
	}
	str := func(key string, dst *string, v *string) {
		if set(key, v != nil) {
			*dst = *v
		}
	}
	boolean := func(key string, dst *bool, v *bool) {
		if set(key, v != nil) {
			*dst = *v
		}
	}
	str("name", &s.Name, l.Name)
	str("description", &s.Description, l.Description)
	str("volume-type", &s.VolumeType, l.VolumeType)
	if set("os-volume-gib", l.OSVolumeGiB != nil) {
		s.OSVolumeGiB = *l.OSVolumeGiB
	}
	if set("data-volume-gib", l.DataVolumeGiB != nil) {
		s.DataVolumeGiB = *l.DataVolumeGiB
	}
	str("boot-mode", &s.BootMode, l.BootMode)
	str("imds-support", &s.IMDSSupport, l.IMDSSupport)
	boolean("tpm-support", &s.TPM, l.TPM)
	if set("tags", l.Tags != nil) {
		s.Tags = l.Tags
	}
	p := l.Publish
	if set("publish.regions", p.Regions != nil) {
		s.Regions = p.Regions
	}
	boolean("publish.wait", &s.Wait, p.Wait)
	if set("publish.copy-jobs", p.CopyJobs != nil) {
		s.CopyJobs = *p.CopyJobs
	}
	if set("publish.launch-accounts", p.LaunchAccounts != nil) {
		s.LaunchAccounts = p.LaunchAccounts
	}
	boolean("publish.public", &s.Public, p.Public)
	boolean("publish.ssm-parameters", &s.SSM, p.SSM)
	str("publish.ssm-prefix", &s.SSMPrefix, p.SSMPrefix)
	boolean("publish.ssm-overwrite", &s.SSMOverwrite, p.SSMOverwrite)
}

// Names are the values of the name placeholders.
type Names struct{ OS, Variant, Arch, Version, Build string }

var (
	placeholder = regexp.MustCompile(`\{[^{}]*\}`)
	amiName     = regexp.MustCompile(`^[a-zA-Z0-9()\[\] ./\-'@_]{3,128}$`)
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	accountRE   = regexp.MustCompile(`^[0-9]{12}$`)
	ssmPathRE   = regexp.MustCompile(`^(/[a-zA-Z0-9_.-]+)+$`)
)

// expand replaces the placeholders of s; unknown ones are reported.
func (n Names) expand(s string) (string, []string) {
	vals := map[string]string{"{os}": n.OS, "{variant}": n.Variant, "{arch}": n.Arch, "{version}": n.Version, "{build}": n.Build}
	var unknown []string
	out := placeholder.ReplaceAllStringFunc(s, func(p string) string {
		v, ok := vals[p]
		if !ok {
			unknown = append(unknown, p)
			return p
		}
		return v
	})
	return out, unknown
}

// Resolve expands the placeholders and validates every field, naming
// each bad one with where it came from; imageGiB are the sizes of the OS
// and data images (0: no data disk), which the volumes must hold.
func (s Spec) Resolve(n Names, osImageGiB, dataImageGiB int64) (Spec, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		src := s.origin[key]
		if src == "" {
			src = "default"
		}
		errs = append(errs, fmt.Errorf("%s: %s: %s", src, key, fmt.Sprintf(format, args...)))
	}
	r := s
	var unknown []string
	r.Name, unknown = n.expand(s.Name)
	if len(unknown) > 0 {
		bad("name", "unknown placeholder %s (known: {os}, {variant}, {arch}, {version}, {build})", strings.Join(unknown, ", "))
	} else if !amiName.MatchString(r.Name) {
		bad("name", "%q is not an AMI name: 3 to 128 letters, digits and ( ) [ ] space . / - ' @ _", r.Name)
	}
	r.Description, unknown = n.expand(s.Description)
	if len(unknown) > 0 {
		bad("description", "unknown placeholder %s", strings.Join(unknown, ", "))
	} else if len(r.Description) > 255 {
		bad("description", "%d characters, at most 255", len(r.Description))
	}
	if !slices.Contains(VolumeTypes, r.VolumeType) {
		bad("volume-type", "unknown volume type %q (valid: %s)", r.VolumeType, strings.Join(VolumeTypes, ", "))
	}
	if r.OSVolumeGiB < osImageGiB || r.OSVolumeGiB > 16384 {
		bad("os-volume-gib", "%d GiB, want %d (the OS image) to 16384", r.OSVolumeGiB, osImageGiB)
	}
	switch {
	case dataImageGiB == 0 && s.origin["data-volume-gib"] != "":
		bad("data-volume-gib", "the variant's unified partition plan has no data disk")
	case dataImageGiB > 0 && (r.DataVolumeGiB < dataImageGiB || r.DataVolumeGiB > 16384):
		bad("data-volume-gib", "%d GiB, want %d (the data image) to 16384", r.DataVolumeGiB, dataImageGiB)
	}
	if !slices.Contains(BootModes, r.BootMode) {
		bad("boot-mode", "unknown boot mode %q (valid: %s)", r.BootMode, strings.Join(BootModes, ", "))
	} else if r.TPM && r.BootMode == "legacy-bios" {
		bad("tpm-support", "NitroTPM needs boot-mode uefi or uefi-preferred, not legacy-bios (boot-mode from %s)", originOf(s, "boot-mode"))
	}
	if !slices.Contains(IMDSModes, r.IMDSSupport) {
		bad("imds-support", "unknown value %q (valid: v2.0 to require IMDSv2, optional to allow IMDSv1)", r.IMDSSupport)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Tags)) {
		if k == "" || len(k) > 128 || strings.HasPrefix(k, "aws:") || len(r.Tags[k]) > 256 {
			bad("tags", "tag %q: keys are 1 to 128 characters not starting with aws:, values at most 256", k)
		}
	}
	if len(r.Regions) == 0 {
		bad("publish.regions", "no region: set publish.regions, --region or AWS_REGION (or a profile's region)")
	}
	for i, reg := range r.Regions {
		if !regionRE.MatchString(reg) {
			bad("publish.regions", "[%d] %q is not a region name such as us-west-2", i, reg)
		} else if slices.Index(r.Regions, reg) != i {
			bad("publish.regions", "[%d] %q is listed twice", i, reg)
		}
	}
	if r.CopyJobs < 1 || r.CopyJobs > 16 {
		bad("publish.copy-jobs", "%d, want 1 to 16", r.CopyJobs)
	}
	for i, a := range r.LaunchAccounts {
		if !accountRE.MatchString(a) {
			bad("publish.launch-accounts", "[%d] %q is not a 12-digit account ID", i, a)
		}
	}
	if !ssmPathRE.MatchString(r.SSMPrefix) || len(r.SSMPrefix) > 900 {
		bad("publish.ssm-prefix", "%q is not a parameter path such as /petrel (letters, digits, _ . - between single slashes, no trailing slash)", r.SSMPrefix)
	}
	if len(errs) > 0 {
		return r, fmt.Errorf("%w: %w", ErrSpec, errors.Join(errs...))
	}
	return r, nil
}

func originOf(s Spec, key string) string {
	if o := s.origin[key]; o != "" {
		return o
	}
	return "default"
}

// Architecture returns EC2's name of arch.
func Architecture(arch string) string {
	if arch == "aarch64" {
		return "arm64"
	}
	return arch
}
