package initramfs

import "testing"

// hostMountsCmdline are the petrel.mount= parameters of tools/image's
// hostMounts (the devices do not matter here).
const hostMountsCmdline = "petrel.mount=PARTUUID=5b94e8df-28b8-485c-9d19-362263b5944c:/local:ext4:nodev,nosuid,noatime " +
	"petrel.mount=/local/var:/var:bind petrel.mount=/local/opt:/opt:bind " +
	"petrel.mount=PARTLABEL=PRIVATE:/var/lib/petrel:ext4:nodev,nosuid,noexec,noatime"

func TestHostPath(t *testing.T) {
	cl, err := ParseCmdline(hostMountsCmdline)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name         string
		mounts       []Mount
		target, inFS string
		want         string
	}{
		{"DATA's root", cl.Mounts, "/local", "/", "/local"},
		{"DATA's own file", cl.Mounts, "/local", "/host-containers/admin", "/local/host-containers/admin"},
		{"DATA's var is /var", cl.Mounts, "/local", "/var", "/var"},
		{"the journal", cl.Mounts, "/local", "/var/log/journal/x", "/var/log/journal/x"},
		{"DATA's opt is /opt", cl.Mounts, "/local", "/opt/cni", "/opt/cni"},
		{"a name that only starts like var", cl.Mounts, "/local", "/variable", "/local/variable"},
		{"PRIVATE's root", cl.Mounts, "/var/lib/petrel", "/", "/var/lib/petrel"},
		{"the datastore", cl.Mounts, "/var/lib/petrel", "/datastore/current", "/var/lib/petrel/datastore/current"},
		{"longest bind source wins", []Mount{{"/a", "/x", "bind", ""}, {"/a/b", "/y", "bind", ""}}, "/a", "/b/c", "/y/c"},
		{"a bind into another bind's source", []Mount{{"/a", "/b", "bind", ""}, {"/b", "/c", "bind", ""}}, "/a", "/f", "/c/f"},
		{"a bind into itself ends", []Mount{{"/a", "/a/b", "bind", ""}}, "/a", "/f", "/a/b/f"},
		{"no mounts", nil, "/local", "/var", "/local/var"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := HostPath(tt.mounts, tt.target, tt.inFS); got != tt.want {
				t.Errorf("HostPath(%q, %q) = %q, want %q", tt.target, tt.inFS, got, tt.want)
			}
		})
	}
}
