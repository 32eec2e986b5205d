package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/petrel-os/petrel/sources/outfile"
)

// The image build writes a few files and directories into the trees that
// become file systems (the root, BOOT and DATA). It gives them their modes
// explicitly, so that the umask of whoever runs the build (0077 in a
// locked-down shell) never reaches the image: two builds of one commit
// must give the same bytes.
const (
	treeDirMode  os.FileMode = 0o755
	treeFileMode os.FileMode = 0o644
)

// mkdirTree makes dir and its missing parents with mode 0755.
func mkdirTree(dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, treeDirMode); err != nil {
		return err
	}
	for _, d := range missing {
		if err := os.Chmod(d, treeDirMode); err != nil {
			return fmt.Errorf("set mode of %s: %w", d, err)
		}
	}
	return nil
}

// writeTreeFile writes data to path with mode 0644, making missing parent
// directories with mode 0755. Nothing reads the scratch trees after a
// crash, so nothing is synced.
func writeTreeFile(path string, data []byte) error {
	if err := mkdirTree(filepath.Dir(path)); err != nil {
		return err
	}
	return outfile.WriteFile(path, data, outfile.Options{Mode: treeFileMode, NoSync: true, NoDirSync: true})
}
