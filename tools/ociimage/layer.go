package ociimage

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Layer is a compressed layer: the blob's digest and size, and the digest
// of the uncompressed tar (the config's diff ID).
type Layer struct {
	Digest, DiffID string
	Size           int64
}

// writeLayer writes tree as a gzip-compressed tar to w: entries in
// lexical order, names relative to tree, every time epoch, owners as
// numbers only, hard links written as separate files.
func writeLayer(tree string, epoch time.Time, w io.Writer) (Layer, error) {
	blob := sha256.New()
	counter := &countWriter{}
	gz, err := gzip.NewWriterLevel(io.MultiWriter(w, blob, counter), gzip.BestCompression)
	if err != nil {
		return Layer{}, err
	}
	diff := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(gz, diff))
	err = filepath.WalkDir(tree, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(tree, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		switch {
		case info.Mode().IsRegular(), info.IsDir(), info.Mode()&fs.ModeSymlink != 0:
		default:
			return fmt.Errorf("add %s to the layer: %s is neither a file, a directory nor a symbolic link", rel, info.Mode().Type())
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return fmt.Errorf("add %s to the layer: %w", rel, err)
		}
		h.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			h.Name += "/"
		}
		h.ModTime, h.AccessTime, h.ChangeTime = epoch, time.Time{}, time.Time{}
		h.Uname, h.Gname = "", ""
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			h.Uid, h.Gid = int(st.Uid), int(st.Gid)
		}
		h.PAXRecords = nil
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("add %s to the layer: %w", rel, err)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(tw, f); err != nil {
			return fmt.Errorf("add %s to the layer: %w", rel, err)
		}
		return nil
	})
	if err != nil {
		return Layer{}, fmt.Errorf("write layer of %s: %w", tree, err)
	}
	if err := tw.Close(); err != nil {
		return Layer{}, err
	}
	if err := gz.Close(); err != nil {
		return Layer{}, err
	}
	return Layer{Digest: "sha256:" + fmt.Sprintf("%x", blob.Sum(nil)), DiffID: "sha256:" + fmt.Sprintf("%x", diff.Sum(nil)), Size: counter.n}, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
