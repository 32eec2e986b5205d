package api

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestReadOSRelease(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "os-release")
	data := "# comment\nNAME=Petrel\nPRETTY_NAME=\"Petrel 0.2.0 (metal-dev)\"\nVARIANT_ID='metal-dev'\nVERSION_ID=0.2.0\nBUILD_ID=\"abc\\\"d\"\nbroken line\n"
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadOSRelease(p)
	if err != nil {
		t.Fatal(err)
	}
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	want := OSRelease{PrettyName: "Petrel 0.2.0 (metal-dev)", VariantID: "metal-dev", VersionID: "0.2.0", BuildID: `abc"d`, Arch: arch}
	if got != want {
		t.Errorf("ReadOSRelease = %+v, want %+v", got, want)
	}
	if _, err := ReadOSRelease(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadOSRelease(missing) = %v, want not exist", err)
	}
}
