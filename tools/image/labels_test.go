package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/selinux"
)

// TestLabels checks the labels the image gives DATA's and PRIVATE's files:
// by the path each has on a host, where DATA's var/ is /var through a bind
// mount (state_t for /var/lib/systemd, not local_t as /local/var/...
// would be), the same mapping the initramfs relabels a host from before
// SELinux with; <<none>> files get no label.
func TestLabels(t *testing.T) {
	fc, err := selinux.ParseFileContexts(strings.NewReader(`/.*	system_u:object_r:os_t:s0
/(local|var|opt)(/.*)?	system_u:object_r:local_t:s0
/var/lib/systemd(/.*)?	system_u:object_r:state_t:s0
/var/lib/petrel(/.*)?	system_u:object_r:private_t:s0
/var/lib/petrel/datastore(/.*)?	system_u:object_r:datastore_t:s0
/local/keep	<<none>>
`), "fc")
	if err != nil {
		t.Fatal(err)
	}
	a := &assembly{contexts: fc}
	for _, tt := range []struct {
		name, mountedAt string
		dirs            []string
		want            map[string]string
	}{
		{"DATA", dataMount, []string{"var/lib/systemd", "opt", "keep"}, map[string]string{
			"/": "local_t", "/var": "local_t", "/var/lib": "local_t", "/var/lib/systemd": "state_t", "/opt": "local_t"}},
		{"PRIVATE", privateMount, []string{"datastore"}, map[string]string{"/": "private_t", "/datastore": "datastore_t"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tree := t.TempDir()
			for _, d := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			got, err := a.labels(tree, tt.mountedAt)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("labels %v, want %d of them", got, len(tt.want))
			}
			for name, typ := range tt.want {
				if selinux.Type(got[name]) != typ {
					t.Errorf("label of %s = %q, want type %s", name, got[name], typ)
				}
			}
		})
	}
}
