package image

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"

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
// fsimage.Ext4Options.Labels, looked up as the paths they have on a host,
// where tree is mounted at mountedAt: DATA's "/var" is "/local/var".
// Files the policy leaves alone (<<none>>) get no label.
func (a *assembly) labels(tree, mountedAt string) (map[string]string, error) {
	if a.contexts == nil {
		return nil, nil
	}
	m := map[string]string{}
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(tree, p)
		if err != nil {
			return err
		}
		in := "/" + filepath.ToSlash(rel)
		if rel == "." {
			in = "/"
		}
		if ctx, ok := a.contexts.Lookup(path.Join(mountedAt, in), d.Type()); ok {
			m[in] = ctx
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("label %s: %w", tree, err)
	}
	return m, nil
}
