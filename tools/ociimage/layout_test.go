package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tree writes a small file system with a file, an executable, a symlink
// and an empty directory, with the given file mtime.
func tree(t *testing.T, mtime time.Time) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "usr/bin"), 0o755)
	os.MkdirAll(filepath.Join(dir, "empty"), 0o700)
	os.WriteFile(filepath.Join(dir, "usr/bin/prog"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc-file"), []byte("x"), 0o600)
	os.Symlink("usr/bin", filepath.Join(dir, "bin"))
	for _, p := range []string{"usr/bin/prog", "etc-file", "usr/bin", "usr", "empty"} {
		os.Chtimes(filepath.Join(dir, p), mtime, mtime)
	}
	return dir
}

// TestLayoutReproducible writes the same tree, with other file times, to
// two layouts: same digests, same archive bytes; another epoch changes
// the digest. The layer holds the files with their modes, epoch as the
// time and no owner names.
func TestLayoutReproducible(t *testing.T) {
	def := &Definition{Name: "x", Packages: []string{"p"}, Entrypoint: []string{"/usr/bin/prog"}}
	epoch := time.Unix(1700000000, 0)
	write := func(src string, epoch time.Time) (*Layout, []byte) {
		l, err := WriteLayout(filepath.Join(t.TempDir(), "layout"), src, def, epoch, "petrel/x:1")
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteArchive(l.Dir, epoch, &buf); err != nil {
			t.Fatal(err)
		}
		return l, buf.Bytes()
	}
	a, archA := write(tree(t, time.Unix(1, 0)), epoch)
	b, archB := write(tree(t, time.Now()), epoch)
	if a.Manifest.Digest != b.Manifest.Digest || !bytes.Equal(archA, archB) {
		t.Errorf("two builds of one tree: manifests %s and %s, archives equal: %v", a.Manifest.Digest, b.Manifest.Digest, bytes.Equal(archA, archB))
	}
	if c, _ := write(tree(t, time.Unix(1, 0)), epoch.Add(time.Second)); c.Manifest.Digest == a.Manifest.Digest {
		t.Error("another epoch gave the same manifest digest")
	}
	// The archive is a layout: oci-layout, index.json with the name, blobs.
	tr := tar.NewReader(bytes.NewReader(archA))
	var names []string
	var layer []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "index.json" {
			data, _ := io.ReadAll(tr)
			if !strings.Contains(string(data), `"org.opencontainers.image.ref.name":"petrel/x:1"`) {
				t.Errorf("index.json = %s", data)
			}
		}
		if h.Size > 200 && strings.HasPrefix(h.Name, "blobs/sha256/") {
			layer, _ = io.ReadAll(tr)
		}
	}
	if names[0] != "blobs/" || !strings.Contains(strings.Join(names, " "), "index.json oci-layout") {
		t.Errorf("archive entries = %v", names)
	}
	gz, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	lr := tar.NewReader(gz)
	var entries []string
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(epoch) || h.Uname != "" || h.Gname != "" {
			t.Errorf("layer entry %s: time %v, owner %q:%q", h.Name, h.ModTime, h.Uname, h.Gname)
		}
		entries = append(entries, h.Name+" "+h.FileInfo().Mode().String()+" "+h.Linkname)
	}
	want := "bin Lrwxrwxrwx usr/bin|empty/ drwx------ |etc-file -rw------- |usr/ drwxr-xr-x |usr/bin/ drwxr-xr-x |usr/bin/prog -rwxr-xr-x "
	if got := strings.Join(entries, "|"); got != want {
		t.Errorf("layer entries:\n got %s\nwant %s", got, want)
	}
}
