package initramfs

import (
	"path"
	"strings"
)

// HostPath returns the path that the file name (absolute, slash-separated,
// in the file system that mounts, the petrel.mount= parameters, mount at
// target) has on the host once every mount is in place: the path a
// program uses, so the one file_contexts labels it by. A file below the
// source of a bind mount is reached through the bind's target: DATA,
// mounted at /local with /local/var bound on /var, has its
// "/var/lib/systemd" at /var/lib/systemd (state_t), not
// /local/var/lib/systemd (local_t). The longest matching bind source
// wins; the image build (tools/image) and the initramfs's relabel label
// by this path alike.
func HostPath(mounts []Mount, target, name string) string {
	p := path.Join(target, name)
	for range mounts { // a bind may lead below another bind's source
		best := -1
		for i, m := range mounts {
			if m.FSType != "bind" || !below(p, m.Source) {
				continue
			}
			if best < 0 || len(m.Source) > len(mounts[best].Source) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		p = path.Join(mounts[best].Target, strings.TrimPrefix(p, mounts[best].Source))
	}
	return p
}

// below reports whether p is dir or inside it.
func below(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}
