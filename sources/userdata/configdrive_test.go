package userdata

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/fat"
	"github.com/petrel-os/petrel/sources/testkit"
)

const driveDoc = "[settings]\nmotd = \"from the config drive\"\n"

func vfatImage(t *testing.T, label string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "drive.img")
	testkit.Run(t, "mkfs.vfat", "-C", "-n", label, img, "2048")
	for name, body := range files {
		src := filepath.Join(dir, "src-"+name)
		if err := os.WriteFile(src, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		testkit.Run(t, "mcopy", "-i", img, src, "::"+name)
	}
	return img
}

func isoImage(t *testing.T, label string, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "meta-data"), []byte("instance-id: i-1\n"), 0o644)
	if err := os.WriteFile(filepath.Join(root, "user-data"), []byte(driveDoc), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "drive.iso")
	args := append([]string{"-quiet", "-o", img, "-V", label}, extra...)
	testkit.Run(t, "genisoimage", append(args, root)...)
	return img
}

func TestConfigDrive(t *testing.T) {
	for _, tc := range []struct {
		name string
		img  func(t *testing.T) string
	}{
		{"vfat", func(t *testing.T) string {
			return vfatImage(t, "CIDATA", map[string]string{"meta-data": "instance-id: i-1\n", "user-data": driveDoc})
		}},
		{"iso rock ridge", func(t *testing.T) string { return isoImage(t, "cidata", "-r") }},
		{"iso joliet", func(t *testing.T) string { return isoImage(t, "cidata", "-J", "-r") }},
		{"iso plain", func(t *testing.T) string { return isoImage(t, "CIDATA") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.img(t)
			other := vfatImage(t, "OTHER", map[string]string{"user-data": "[settings]\nmotd = \"wrong\"\n"})
			p := ConfigDriveProvider{Devices: []string{filepath.Join(t.TempDir(), "missing*"), other, img}}
			data, err := p.UserData(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			s, err := Parse(p.Name(), data)
			if err != nil || s["motd"] != "from the config drive" {
				t.Fatalf("parse %q: %v, %v", data, s, err)
			}
		})
	}
}

func TestConfigDriveCases(t *testing.T) {
	empty := vfatImage(t, "CIDATA", map[string]string{"meta-data": "x\n"})
	if data, err := ReadConfigDrive(empty); err != nil || data != nil {
		t.Fatalf("drive without user-data: %q, %v", data, err)
	}
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, make([]byte, 64<<10), 0o644)
	if _, err := ReadConfigDrive(junk); !errors.Is(err, ErrNotConfigDrive) {
		t.Fatalf("junk: %v", err)
	}
	p := ConfigDriveProvider{Devices: []string{junk}}
	if data, err := p.UserData(context.Background()); err != nil || data != nil {
		t.Fatalf("no drive: %q, %v", data, err)
	}
	bad := vfatImage(t, "CIDATA", map[string]string{"user-data": "[settings]\nmotd = \n"})
	data, err := ReadConfigDrive(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("config drive CIDATA", data); err == nil || !strings.Contains(err.Error(), "user data from config drive CIDATA: TOML line 2") {
		t.Fatalf("err = %v", err)
	}
}

// TestConfigDriveFragmented reads a user-data file whose clusters are not
// consecutive: it was written into the hole a deleted file left.
func TestConfigDriveFragmented(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "drive.img")
	testkit.Run(t, "mkfs.vfat", "-C", "-s", "1", "-n", "CIDATA", img, "2048")
	doc := driveDoc + "# " + strings.Repeat("padding ", 1000) + "\n"
	for _, f := range []struct{ name, body string }{
		{"hole", strings.Repeat("h", 1500)},
		{"meta-data", "instance-id: i-1\n"},
	} {
		src := filepath.Join(dir, f.name)
		if err := os.WriteFile(src, []byte(f.body), 0o644); err != nil {
			t.Fatal(err)
		}
		testkit.Run(t, "mcopy", "-i", img, src, "::"+f.name)
	}
	testkit.Run(t, "mdel", "-i", img, "::hole")
	src := filepath.Join(dir, "user-data")
	if err := os.WriteFile(src, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, "mcopy", "-i", img, src, "::user-data")
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, err := fat.FindFile(f, 0, "user-data"); !errors.Is(err, fat.ErrFragmented) {
		t.Fatalf("fat.FindFile(user-data) = %v, want ErrFragmented: the test image is not fragmented", err)
	}
	data, err := ReadConfigDrive(img)
	if err != nil || string(data) != doc {
		t.Fatalf("ReadConfigDrive = %d bytes, %v; want the %d-byte user-data", len(data), err, len(doc))
	}
}

func FuzzReadConfigDrive(f *testing.F) {
	f.Add(make([]byte, 4096))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "img")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = ReadConfigDrive(p)
	})
}
