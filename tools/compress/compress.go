package compress

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/petrel-os/petrel/sources/imagecodec"
	"github.com/petrel-os/petrel/sources/outfile"
)

// OutputName returns the name of the compressed form of an image:
// "petrel-…-root.ext4" becomes "petrel-…-root.ext4.zst".
func OutputName(image string) string {
	return image + imagecodec.Ext
}

// CompressFile compresses the file at srcPath into dstPath (normally
// OutputName(srcPath)) at the given level. It writes a temporary file in the
// destination directory, syncs it and renames it into place, so dstPath is
// never half-written. The output is deterministic.
func CompressFile(ctx context.Context, srcPath, dstPath string, level imagecodec.Level) (err error) {
	src, err := os.Open(srcPath)
	if err != nil {
		return fmt.Errorf("open image: %w", err)
	}
	defer src.Close()
	tmp, err := outfile.Create(dstPath)
	if err != nil {
		return err
	}
	defer tmp.Discard()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := imagecodec.Compress(ctx, bw, bufio.NewReaderSize(src, 1<<20), level); err != nil {
		return fmt.Errorf("compress %q: %w", srcPath, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %q: %w", tmp.Name(), err)
	}
	if err := tmp.Commit(); err != nil {
		return fmt.Errorf("write compressed image: %w", err)
	}
	return nil
}
