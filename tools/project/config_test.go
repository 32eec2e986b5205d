package project_test

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/petrel-os/petrel/tools/project"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	p, err := project.Load(context.Background(), filepath.Join("testdata", "good"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		env     map[string]string
		o       project.Overrides
		want    project.Config
		wantErr string
	}{
		{name: "makefile defaults", want: project.Config{Variant: "metal-dev", Arch: "x86_64", Jobs: runtime.NumCPU(), BuildDir: filepath.Join(p.Root, "build")}},
		{name: "env overrides makefile",
			env:  map[string]string{"BUILDSYS_VARIANT": "vmware-dev", "BUILDSYS_JOBS": "3", "BUILDSYS_BUILD_DIR": "/tmp/out", "BUILDSYS_LOOKASIDE_CACHE": "http://127.0.0.1:8080/", "BUILDSYS_UPSTREAM_SOURCE_FALLBACK": "true"},
			want: project.Config{Variant: "vmware-dev", Arch: "x86_64", Jobs: 3, BuildDir: "/tmp/out", LookasideURL: "http://127.0.0.1:8080", UpstreamFallback: true}},
		{name: "flags override env",
			env:  map[string]string{"BUILDSYS_VARIANT": "vmware-dev", "BUILDSYS_JOBS": "3", "BUILDSYS_ARCH": "x86_64"},
			o:    project.Overrides{Variant: "metal-dev", Arch: "aarch64", Jobs: 5},
			want: project.Config{Variant: "metal-dev", Arch: "aarch64", Jobs: 5, BuildDir: filepath.Join(p.Root, "build")}},
		{name: "bad jobs", env: map[string]string{"BUILDSYS_JOBS": "many"},
			wantErr: `environment variable BUILDSYS_JOBS: expected a positive integer, got "many"`},
		{name: "zero jobs", env: map[string]string{"BUILDSYS_JOBS": "0"},
			wantErr: `environment variable BUILDSYS_JOBS: expected a positive integer, got "0"`},
		{name: "bad arch flag", o: project.Overrides{Arch: "riscv64"},
			wantErr: `flag --arch: unknown architecture "riscv64" (valid: x86_64, aarch64)`},
		{name: "bad fallback", env: map[string]string{"BUILDSYS_UPSTREAM_SOURCE_FALLBACK": "perhaps"},
			wantErr: `environment variable BUILDSYS_UPSTREAM_SOURCE_FALLBACK: expected true or false, got "perhaps"`},
		{name: "bad lookaside", env: map[string]string{"BUILDSYS_LOOKASIDE_CACHE": "ftp://x"},
			wantErr: `environment variable BUILDSYS_LOOKASIDE_CACHE: expected an http, https or file URL, got "ftp://x"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.Config(func(k string) string { return tt.env[k] }, tt.o)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Config() error = %v, want %q", err, tt.wantErr)
				}
				if !errors.Is(err, project.ErrInvalidInput) {
					t.Errorf("Config() error does not wrap ErrInvalidInput")
				}
				return
			}
			if err != nil {
				t.Fatalf("Config(): %v", err)
			}
			if got != tt.want {
				t.Errorf("Config() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
