package initramfs

import (
	"errors"
	"strings"
	"testing"
)

func TestVerityRootPolicy(t *testing.T) {
	const verity = "0 8 verity 1 PARTUUID=a/PARTNROFF=1 PARTUUID=a/PARTNROFF=2 4096 4096 1 1 sha256 aa bb"
	const table = "root,,,ro," + verity
	for _, tt := range []struct {
		name    string
		cmdline string
		minor   uint32 // of the created device
		want    string // "" for accepted, else a substring of the refusal
	}{
		{"root=/dev/dm-0", `dm-mod.create="` + table + `" root=/dev/dm-0`, 0, ""},
		{"root=/dev/mapper/root", `dm-mod.create="` + table + `" root=/dev/mapper/root`, 3, ""},
		{"no root=", `dm-mod.create="` + table + `"`, 0, ""},
		{"missing dm-mod.create=", `root=/dev/dm-0`, 0, "no dm-mod.create= on the kernel command line"},
		{"missing dm-mod.create=, plain root", `root=/dev/vda4`, 0, "no dm-mod.create= on the kernel command line"},
		{"two devices", `dm-mod.create="` + table + `;data,,,ro,0 8 linear /dev/vda9 0"`, 0, `describes 2 devices (root, data); exactly one`},
		{"read-write", `dm-mod.create="root,,,rw,` + verity + `"`, 0, `device "root" is read-write`},
		{"non-verity target", `dm-mod.create="root,,,ro,0 8 linear PARTUUID=a/PARTNROFF=1 0"`, 0, `device "root" table 1 is a "linear" target`},
		{"verity then linear", `dm-mod.create="root,,,ro,` + verity + `,8 8 zero"`, 0, `device "root" table 2 is a "zero" target`},
		{"plain partition root", `dm-mod.create="` + table + `" root=/dev/vda4`, 0, "root=/dev/vda4 is not the verity device"},
		{"PARTUUID root", `dm-mod.create="` + table + `" root=PARTUUID=5526016a-1a97-4ea4-b39a-b7c8c6ca4502`, 0, "root=PARTUUID=5526016a-1a97-4ea4-b39a-b7c8c6ca4502 is not the verity device"},
		{"major:minor root", `dm-mod.create="` + table + `" root=254:4`, 0, "root=254:4 is not the verity device"},
		{"other mapper device", `dm-mod.create="` + table + `" root=/dev/mapper/evil`, 0, `root=/dev/mapper/evil names no device of dm-mod.create= (it creates "root")`},
		{"other dm minor", `dm-mod.create="` + table + `" root=/dev/dm-1`, 0, "root=/dev/dm-1 is not the verity device root (/dev/dm-0)"},
		{"dm minor with a leading zero", `dm-mod.create="` + table + `" root=/dev/dm-00`, 0, "root=/dev/dm-00 is not the verity device"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cl, err := ParseCmdline(tt.cmdline)
			if err != nil {
				t.Fatal(err)
			}
			d, err := verityDevice(cl)
			var path string
			if err == nil {
				path, err = rootNode(cl.Root, d.Name, tt.minor)
			}
			if tt.want == "" {
				if err != nil || d.Name != "root" || !strings.HasPrefix(path, "/dev/dm-") {
					t.Fatalf("refused: %q, %v", path, err)
				}
				return
			}
			if !errors.Is(err, ErrRoot) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want ErrRoot with %q", err, tt.want)
			}
		})
	}
}
