package image

import (
	"fmt"
	"strings"

	"github.com/petrel-os/petrel/sources/initramfs"
	"github.com/petrel-os/petrel/sources/selinux"
)

// loadFileContexts reads the file_contexts of the policy in the closure
// (see fileContexts); without a policy the image is not labelled and
// labels returns nil maps.
func (a *assembly) loadFileContexts() error {
	p := fileContexts(a.root)
	if p == "" {
		return nil
	}
	fc, err := selinux.ReadFileContexts(p)
	if err != nil {
		return err
	}
	a.contexts = fc
	return nil
}

// labels returns the SELinux labels of every file of tree, for
// fsimage.Ext4Options.Labels, looked up as the paths they have on a host
// where the initramfs mounts tree at mountedAt (one of the hostMounts
// targets): DATA's "/var/lib/systemd" is /var/lib/systemd through the
// bind of /local/var on /var (initramfs.HostPath, which the initramfs's
// relabel of a file system from before SELinux uses too). Files the
// policy leaves alone (<<none>>) get no label.
func (a *assembly) labels(tree, mountedAt string) (map[string]string, error) {
	if a.contexts == nil {
		return nil, nil
	}
	cl, err := initramfs.ParseCmdline(strings.Join(hostMounts("PRIVATE"), " ")) // the partition name does not change a path
	if err != nil {
		return nil, fmt.Errorf("label %s: %w", tree, err)
	}
	m := map[string]string{}
	hostPath := func(name string) string { return initramfs.HostPath(cl.Mounts, mountedAt, name) }
	err = a.contexts.Walk(tree, hostPath, func(_, name, ctx string) error {
		m[name] = ctx
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("label %s: %w", tree, err)
	}
	return m, nil
}
