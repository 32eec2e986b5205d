package initramfs

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	const table = "root,,,ro,0 8 verity 1 PARTUUID=a/PARTNROFF=1 PARTUUID=a/PARTNROFF=2 4096 4096 1 1 sha256 aa bb 2 restart_on_corruption ignore_zero_blocks"
	for _, tt := range []struct {
		name string
		in   string
		want Cmdline
	}{
		{
			name: "quotes after the equals sign, init arguments",
			in:   `console=ttyS0 dm-mod.create="` + table + `" root=/dev/dm-0 rootfstype=erofs -- systemd.log_color=0 x` + "\n",
			want: Cmdline{DMCreate: table, Root: "/dev/dm-0", RootFSType: "erofs", InitArgs: []string{"systemd.log_color=0", "x"}},
		},
		{
			name: "quote before the key, as GRUB passes it",
			in:   `"dm-mod.create=` + table + `" root=/dev/dm-0 init=/usr/lib/systemd/systemd rootflags=noatime`,
			want: Cmdline{DMCreate: table, Root: "/dev/dm-0", Init: "/usr/lib/systemd/systemd", RootFlags: "noatime"},
		},
		{
			name: "later wins, no init args",
			in:   "rootfstype=ext4 rootfstype=erofs --",
			want: Cmdline{RootFSType: "erofs", InitArgs: []string{}},
		},
		{
			name: "a second root= after -- is an init argument",
			in:   "root=/dev/dm-0 -- root=/dev/vda4",
			want: Cmdline{Root: "/dev/dm-0", InitArgs: []string{"root=/dev/vda4"}},
		},
		{name: "empty", in: "", want: Cmdline{}},
		{
			name: "mounts in order",
			in:   "petrel.mount=PARTUUID=5b94e8df-28b8-485c-9d19-362263b5944c:/local:ext4:nodev,nosuid petrel.mount=/local/var:/var:bind petrel.mount=PARTLABEL=PETREL-PRIVATE:/var/lib/petrel:ext4:",
			want: Cmdline{Mounts: []Mount{
				{Source: "PARTUUID=5b94e8df-28b8-485c-9d19-362263b5944c", Target: "/local", FSType: "ext4", Options: "nodev,nosuid"},
				{Source: "/local/var", Target: "/var", FSType: "bind"},
				{Source: "PARTLABEL=PETREL-PRIVATE", Target: "/var/lib/petrel", FSType: "ext4"},
			}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCmdline(tt.in)
			if err != nil {
				t.Fatalf("ParseCmdline(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseCmdline(%q) =\n%+v\nwant\n%+v", tt.in, got, tt.want)
			}
		})
	}
	for _, tt := range []struct{ name, in, want string }{
		{"duplicate root=", `dm-mod.create="` + table + `" root=/dev/dm-0 root=/dev/vda4`, "root= given more than once"},
		{"duplicate root= before dm-mod.create=", `root=/dev/dm-0 root=/dev/dm-0 dm-mod.create="` + table + `"`, "root= given more than once"},
		{"duplicate dm-mod.create=", `dm-mod.create="` + table + `" root=/dev/dm-0 "dm-mod.create=evil,,,ro,0 8 linear /dev/vda4 0"`, "dm-mod.create= given more than once"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCmdline(tt.in)
			if !errors.Is(err, ErrCmdline) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseCmdline(%q) error = %v, want ErrCmdline with %q", tt.in, err, tt.want)
			}
		})
	}
	for _, bad := range []string{`dm-mod.create="root`, "init=sbin/init", "a\x00b",
		"petrel.mount=/dev/vda1:/local", "petrel.mount=/dev/vda1:/local:ext4:a:b", "petrel.mount=:/local:ext4",
		"petrel.mount=/dev/vda1:local:ext4", "petrel.mount=/dev/vda1:/:ext4", "petrel.mount=/dev/vda1:/a/../b:ext4",
		"petrel.mount=/dev/vda1:/local:", "petrel.mount=local/var:/var:bind", "petrel.mount=/local/var:/var:bind:ro",
	} {
		if _, err := ParseCmdline(bad); !errors.Is(err, ErrCmdline) {
			t.Errorf("ParseCmdline(%q) error = %v, want ErrCmdline", bad, err)
		}
	}
}

func FuzzParseCmdline(f *testing.F) {
	f.Add(`console=ttyS0 "dm-mod.create=root,,,ro,0 8 zero" root=/dev/dm-0 -- a b`)
	f.Add(`a="b c" -- "d e"`)
	f.Add(`petrel.mount=PARTLABEL=X:/local:ext4:nodev petrel.mount=/local/var:/var:bind`)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCmdline(s)
		if err != nil {
			if !errors.Is(err, ErrCmdline) {
				t.Fatalf("ParseCmdline(%q) error %v does not wrap ErrCmdline", s, err)
			}
			return
		}
		for _, m := range c.Mounts {
			if !strings.HasPrefix(m.Target, "/") || m.FSType == "" || m.Source == "" {
				t.Fatalf("ParseCmdline(%q) accepted mount %+v", s, m)
			}
		}
		for _, v := range append([]string{c.DMCreate, c.Root, c.Init}, c.InitArgs...) {
			if strings.ContainsRune(v, '"') {
				t.Fatalf("ParseCmdline(%q) left a quote in %q", s, v)
			}
		}
	})
}
