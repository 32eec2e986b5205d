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
