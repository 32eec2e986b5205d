package tufrepo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestKeyPEMRoundTrip(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseKey(k.PEM())
	if err != nil || back.ID() != k.ID() {
		t.Fatalf("ParseKey(PEM) = %v, %v", back, err)
	}
	if _, err := ParseKey([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")); err == nil ||
		!strings.Contains(err.Error(), `expected a PEM "PRIVATE KEY" block`) {
		t.Fatalf("ParseKey(public key) = %v", err)
	}
}

// TestCommitOpen: a committed repository reopens with the same versions,
// targets and consistent-snapshot files, and versions never go back.
func TestCommitOpen(t *testing.T) {
	dir := t.TempDir()
	keys, err := NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	rootJSON, err := NewSignedRoot(keys, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if root, err := metadata.Root().FromBytes(rootJSON); err != nil || root.VerifyDelegate(metadata.ROOT, root) != nil {
		t.Fatalf("NewSignedRoot gives a root not signed by its root key: %v", err)
	}
	r, err := Create(dir, rootJSON)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "img")
	os.WriteFile(img, []byte("image bytes"), 0o644)
	tf, err := r.AddTarget("img.zst", img)
	if err != nil {
		t.Fatal(err)
	}
	life := map[string]time.Duration{metadata.TARGETS: time.Hour, metadata.SNAPSHOT: time.Hour, metadata.TIMESTAMP: time.Hour}
	c := Commit{Now: now, Expires: life, Keys: keys, Targets: true}
	if err := r.Commit(c); err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(c); err != nil { // same second: versions still rise
		t.Fatal(err)
	}
	o, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v := o.Timestamp.Signed.Version; v != now.Unix()+1 || o.Targets.Signed.Targets["img.zst"].Length != 11 {
		t.Fatalf("reopened: timestamp version %d, targets %v", v, o.Targets.Signed.Targets)
	}
	for _, name := range []string{"1.root.json", "root.json", "timestamp.json",
		o.FileName(metadata.SNAPSHOT), o.FileName(metadata.TARGETS)} {
		if _, err := os.Stat(filepath.Join(dir, MetadataDir, name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	if b, err := os.ReadFile(r.TargetPath(tf)); err != nil || string(b) != "image bytes" {
		t.Fatalf("target file: %q, %v", b, err)
	}
	if _, err := Create(dir, rootJSON); err == nil || !strings.Contains(err.Error(), "already holds one") {
		t.Fatalf("Create over a repository = %v", err)
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a TUF repository") {
		t.Fatalf("Open(empty) = %v", err)
	}
	delete(c.Keys, metadata.SNAPSHOT)
	if err := r.Commit(c); err == nil || !strings.Contains(err.Error(), "sign snapshot: no key given") {
		t.Fatalf("Commit without a snapshot key = %v", err)
	}
}
