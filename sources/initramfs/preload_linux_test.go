package initramfs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenPreload opens the listed files of a root: an absolute link
// resolves inside the root (not on the initramfs), and what is missing or
// not a regular file is named and skipped.
func TestOpenPreload(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for name, data := range map[string]string{"usr/bin/petrel": "agents", "usr/bin/containerd": "runtime!"} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Absolute, as an image may hold it: outside the root it names nothing.
	if err := os.Symlink("/usr/bin/petrel", filepath.Join(root, "usr/bin/apiserver")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	files, size := openPreload(console{w: &out}, root, []string{"/usr/bin/apiserver", "/usr/bin/containerd", "/usr/bin/missing", "/usr/bin"})
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	if len(files) != 2 || size != int64(len("agents")+len("runtime!")) {
		t.Fatalf("opened %d files of %d bytes; want 2 of %d\n%s", len(files), size, len("agents")+len("runtime!"), out.String())
	}
	for _, want := range []string{"preload: open /usr/bin/missing: no such file or directory; skipped", "preload: /usr/bin is not a regular file; skipped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console:\n%s\nwant %q", out.String(), want)
		}
	}
	n, err := readAll(context.Background(), files)
	if err != nil || n != size {
		t.Fatalf("readAll = %d, %v; want %d", n, err, size)
	}
}

// TestStartPreloadBadList: a list that does not parse is named on the
// console and nothing is read; no list is silence.
func TestStartPreloadBadList(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	var out bytes.Buffer
	startPreload(console{w: &out}, root)
	if out.Len() != 0 {
		t.Fatalf("without a list: %q", out.String())
	}
	p := filepath.Join(root, PreloadList)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("/usr/bin/petrel\nusr/bin/containerd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	startPreload(console{w: &out}, root)
	want := `petrel-init: preload: /usr/lib/petrel/preload: line 2: "usr/bin/containerd": expected the absolute, clean path of a file; nothing is read ahead`
	if !strings.Contains(out.String(), want) {
		t.Fatalf("console %q, want %q", out.String(), want)
	}
}

func TestMainPreloadUsage(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{preloadArg, "many"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `--preload "many": expected the number of files, 1 to 64`) {
		t.Fatalf("Main(--preload many) = %d, stderr %q", code, errb.String())
	}
}
