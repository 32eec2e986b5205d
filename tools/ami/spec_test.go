package ami

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/tools/snapshot"
)

var names = Names{OS: "petrel", Variant: "aws-dev", Arch: "x86_64", Version: "0.1.0", Build: "abcd1234"}

func ptr[T any](v T) *T { return &v }

func TestSpecDefaults(t *testing.T) {
	s := Defaults("us-west-2", 2, 20)
	r, err := s.Resolve(names, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "petrel-aws-dev-x86_64-0.1.0-abcd1234" || r.VolumeType != "gp2" || r.BootMode != "uefi-preferred" ||
		r.IMDSSupport != "v2.0" || r.TPM || r.OSVolumeGiB != 2 || r.DataVolumeGiB != 20 || r.Regions[0] != "us-west-2" {
		t.Errorf("defaults resolved to %+v", r)
	}
}

// TestSpecLayers lays a file and the command line over the defaults: the
// last layer that sets a key wins.
func TestSpecLayers(t *testing.T) {
	file, err := ParseLayer("variants/aws-dev/ami.toml", []byte(`
name = "{os}-{variant}-{version}"
volume-type = "gp3"
tpm-support = true
tags = { team = "os" }
[publish]
regions = ["us-east-1", "eu-west-1"]
ssm-parameters = true
`))
	if err != nil {
		t.Fatal(err)
	}
	s := Defaults("us-west-2", 2, 20)
	s.Apply(file)
	s.Apply(Layer{Source: "command line", VolumeType: ptr("io2"), Publish: PublishLayer{Regions: []string{"ap-south-1"}}})
	r, err := s.Resolve(names, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "petrel-aws-dev-0.1.0" || r.VolumeType != "io2" || !r.TPM || r.Tags["team"] != "os" || !r.SSM ||
		len(r.Regions) != 1 || r.Regions[0] != "ap-south-1" {
		t.Errorf("layers resolved to %+v", r)
	}
}

// TestSpecErrors names every bad field with the layer it came from, all
// at once.
func TestSpecErrors(t *testing.T) {
	_, err := ParseLayer("ami.toml", []byte("volume-type = \"gp3\"\ncolour = \"red\"\n[publish]\nregion = \"x\"\n"))
	for _, want := range []string{"ami.toml: colour: unknown key", "ami.toml: publish.region: unknown key"} {
		if !errors.Is(err, ErrSpec) || !strings.Contains(fmtErr(err), want) {
			t.Errorf("ParseLayer with unknown keys = %v, want %q", err, want)
		}
	}
	_, err = ParseLayer("ami.toml", []byte("volume-type = 3\n"))
	if !errors.Is(err, ErrSpec) || !strings.Contains(fmtErr(err), `line 1 (last key "volume-type")`) {
		t.Errorf("ParseLayer with a number for a string = %v, want the line", err)
	}

	file, err := ParseLayer("variants/aws-dev/ami.toml", []byte(`
name = "{os}-{flavour}"
description = "{nope}"
volume-type = "gp9"
os-volume-gib = 1
data-volume-gib = 99999
boot-mode = "legacy-bios"
imds-support = "v1"
tpm-support = true
tags = { "aws:x" = "y" }
[publish]
regions = ["us-west-2", "mars-1", "us-west-2"]
copy-jobs = 0
launch-accounts = ["12345"]
ssm-prefix = "petrel/"
`))
	if err != nil {
		t.Fatal(err)
	}
	s := Defaults("us-west-2", 2, 20)
	s.Apply(file)
	_, err = s.Resolve(names, 2, 1)
	if !errors.Is(err, ErrSpec) {
		t.Fatalf("Resolve = %v, want ErrSpec", err)
	}
	for _, want := range []string{
		`variants/aws-dev/ami.toml: name: unknown placeholder {flavour}`,
		`variants/aws-dev/ami.toml: description: unknown placeholder {nope}`,
		`variants/aws-dev/ami.toml: volume-type: unknown volume type "gp9" (valid: gp2, gp3, io1, io2, st1, sc1, standard)`,
		`variants/aws-dev/ami.toml: os-volume-gib: 1 GiB, want 2 (the OS image) to 16384`,
		`variants/aws-dev/ami.toml: data-volume-gib: 99999 GiB, want 1 (the data image) to 16384`,
		`variants/aws-dev/ami.toml: tpm-support: NitroTPM needs boot-mode uefi or uefi-preferred, not legacy-bios (boot-mode from variants/aws-dev/ami.toml)`,
		`variants/aws-dev/ami.toml: imds-support: unknown value "v1"`,
		`variants/aws-dev/ami.toml: tags: tag "aws:x"`,
		`variants/aws-dev/ami.toml: publish.regions: [1] "mars-1" is not a region name such as us-west-2`,
		`variants/aws-dev/ami.toml: publish.regions: [2] "us-west-2" is listed twice`,
		`variants/aws-dev/ami.toml: publish.copy-jobs: 0, want 1 to 16`,
		`variants/aws-dev/ami.toml: publish.launch-accounts: [0] "12345" is not a 12-digit account ID`,
		`variants/aws-dev/ami.toml: publish.ssm-prefix: "petrel/" is not a parameter path`,
	} {
		if !strings.Contains(fmtErr(err), want) {
			t.Errorf("Resolve errors lack\n  %s\nin\n%s", want, fmtErr(err))
		}
	}

	// A data volume for a unified image, and no region at all.
	s = Defaults("", 4, 0)
	s.Apply(Layer{Source: "--data-volume-gib", DataVolumeGiB: ptr[int64](5)})
	_, err = s.Resolve(names, 2, 0)
	for _, want := range []string{"--data-volume-gib: data-volume-gib: the variant's unified partition plan has no data disk",
		"default: publish.regions: no region"} {
		if !strings.Contains(fmtErr(err), want) {
			t.Errorf("Resolve = %v, want %q", err, want)
		}
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestProgressPrinter(t *testing.T) {
	var b bytes.Buffer
	clock := time.Unix(0, 0)
	pp := NewProgressPrinter(&b, false, 10*time.Second)
	pp.now = func() time.Time { return clock }
	for i := 1; i <= 100; i++ {
		clock = clock.Add(time.Second)
		pp.Update("os", snapshot.Progress{Done: i, Total: 100})
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 10 || lines[9] != "os disk: 100 of 100 blocks uploaded (100%), 1 blocks/s" {
		t.Errorf("periodic lines:\n%s", b.String())
	}
	b.Reset()
	pp = NewProgressPrinter(&b, true, 10*time.Second)
	pp.now = func() time.Time { return clock }
	for i := 1; i <= 4; i++ {
		clock = clock.Add(time.Second)
		pp.Update("data", snapshot.Progress{Done: i, Total: 4})
	}
	if !strings.Contains(b.String(), "\r\033[Kdata disk [#######") || !strings.HasSuffix(b.String(), "100% 4/4 blocks, 1 blocks/s\n") {
		t.Errorf("bar: %q", b.String())
	}
}
