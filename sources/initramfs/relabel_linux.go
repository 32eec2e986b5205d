package initramfs

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/petrel-os/petrel/sources/selinux"
)

// relabel labels the file systems that the petrel.mount= parameters mount
// below root (devices, not binds) and that were never labelled: DATA and
// PRIVATE of a host installed from a release without SELinux, whose files
// the loaded policy sees as unlabeled_t (the API server could not use
// its datastore, and files created in unlabelled directories would stay
// unprotected). Each file gets the label fc gives the path it has on the
// host (HostPath), from the file_contexts of the factory policy
// policyType. A labelled file system costs one getxattr of its root (the
// file_contexts is read only for a relabel); the root is labelled last, so
// a relabel cut short runs again at the next boot.
func relabel(con console, root, policyType string, mounts []Mount) error {
	var fc *selinux.FileContexts
	for _, m := range mounts {
		if m.FSType == "bind" {
			continue
		}
		dir := filepath.Join(root, m.Target)
		unlabelled, err := selinux.Unlabelled(dir)
		if err != nil {
			return err
		}
		if !unlabelled {
			continue
		}
		start := time.Now()
		if fc == nil {
			if fc, err = fileContexts(root, policyType); err != nil {
				return err
			}
		}
		n, err := fc.Relabel(dir, func(name string) string { return HostPath(mounts, m.Target, name) })
		if err != nil {
			return err
		}
		con.printf("labelled %d files on %s (a file system from before SELinux) in %.1fs", n, m.Target, time.Since(start).Seconds())
	}
	return nil
}

// fileContexts reads the file_contexts of the factory policy of type
// policyType in the new root root.
func fileContexts(root, policyType string) (*selinux.FileContexts, error) {
	p := filepath.Join(root, FactoryEtc, "selinux", policyType, "contexts", "files", "file_contexts")
	fc, err := selinux.ReadFileContexts(p)
	if err != nil {
		return nil, fmt.Errorf("read the policy's labels: %w", err)
	}
	return fc, nil
}
