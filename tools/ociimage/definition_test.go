package ociimage

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // problems; none means valid
	}{
		{"valid", `packages = ["a"]` + "\n" + `entrypoint = ["/x"]` + "\n" + `env = ["PATH=/usr/bin"]` + "\n" + `working-dir = "/"`, nil},
		{"cmd only", `packages = ["a"]` + "\n" + `cmd = ["/x"]`, nil},
		{"every problem", `packages = []` + "\n" + `env = ["NOVALUE"]` + "\n" + `working-dir = "rel"` + "\n" + `user = "root"`, []string{
			"user: unknown field (expected packages, entrypoint, cmd, env, working-dir, labels)",
			"packages: expected at least one package",
			"entrypoint: expected an entrypoint or a cmd",
			`env.0: expected NAME=VALUE, got "NOVALUE"`,
			`working-dir: expected an absolute path, got "rel"`,
		}},
		{"not TOML", `packages = [`, []string{"image.toml: toml:"}},
		{"wrong type", `packages = "a"`, []string{"image.toml: toml:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse("packages/x-container/image.toml", "x", []byte(tc.doc))
			if tc.want == nil {
				if err != nil || d.Name != "x" {
					t.Fatalf("Parse = %+v, %v", d, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse = %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestLoadShipped loads the definitions this repository ships; a name
// without a definition lists the ones there are.
func TestLoadShipped(t *testing.T) {
	root := filepath.Join("..", "..")
	if got := strings.Join(List(root), ","); got != "admin,control" {
		t.Errorf("List = %s, want admin,control", got)
	}
	for _, n := range List(root) {
		if _, err := Load(root, n); err != nil {
			t.Error(err)
		}
	}
	_, err := Load(root, "nosuch")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `no image "nosuch"`) || !strings.Contains(err.Error(), "(images: admin, control)") {
		t.Errorf("Load(nosuch) = %v", err)
	}
	if _, err := Load(root, "../x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Load(../x) = %v, want ErrInvalid", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`packages = ["a"]` + "\n" + `entrypoint = ["/x"]`)
	f.Add(`env = ["A=B"]`)
	f.Fuzz(func(t *testing.T, doc string) {
		d, err := Parse("image.toml", "x", []byte(doc))
		if err == nil && (len(d.Packages) == 0 || len(d.Entrypoint)+len(d.Cmd) == 0) {
			t.Fatalf("Parse accepted %q without packages or entrypoint", doc)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("Parse error %v is not ErrInvalid", err)
		}
	})
}
