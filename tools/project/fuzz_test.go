package project

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F, glob string) {
	files, err := filepath.Glob(glob)
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func checkInvalid(t *testing.T, errs []error) {
	for _, err := range errs {
		if !errors.Is(err, ErrInvalidInput) {
			t.Fatalf("error %q does not wrap ErrInvalidInput", err)
		}
	}
}

func FuzzDecodeManifest(f *testing.F) {
	addSeeds(f, "testdata/good/Twoliter.toml")
	f.Add([]byte("schema-version = 1\n[[sdk.tool]]\nfile = \"x\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, errs := decodeManifest("Twoliter.toml", data)
		checkInvalid(t, errs)
	})
}

func FuzzDecodeVariant(f *testing.F) {
	addSeeds(f, "testdata/good/variants/*/variant.toml")
	f.Fuzz(func(t *testing.T, data []byte) {
		v, errs := decodeVariant("variant.toml", data)
		checkInvalid(t, errs)
		if len(errs) == 0 && (v.ImageFormat == "" || v.ImageLayout.OSImageSizeGiB == 0 || v.ImageLayout.PartitionPlan == "") {
			t.Fatalf("valid variant without defaults: %+v", v)
		}
	})
}

// TestRepoManifests validates the repository's own Twoliter.toml and
// Makefile.toml.
func TestRepoManifests(t *testing.T) {
	t.Parallel()
	for _, f := range []struct {
		name   string
		decode func(string, []byte) []error
	}{
		{"Twoliter.toml", func(n string, d []byte) []error { _, errs := decodeManifest(n, d); return errs }},
		{"Makefile.toml", func(n string, d []byte) []error { _, errs := decodeMakefile(n, d); return errs }},
	} {
		data, err := os.ReadFile(filepath.Join("..", "..", f.name))
		if err != nil {
			t.Fatal(err)
		}
		if errs := f.decode(f.name, data); len(errs) > 0 {
			t.Errorf("%s: %v", f.name, errors.Join(errs...))
		}
	}
}
