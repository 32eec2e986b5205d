package qcow2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

func TestConvert(t *testing.T) {
	testkit.Tool(t, "qemu-img")
	t.Parallel()
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.img")
	const size = 64<<20 + 512
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 5 << 20, 33<<20 + 17, size - 512} {
		if _, err := f.WriteAt(bytes.Repeat([]byte{byte(off), 0xa5}, 200), off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	out := filepath.Join(dir, "disk.qcow2")
	if err := Convert(context.Background(), raw, out); err != nil {
		t.Fatalf("Convert: %v", err)
	}
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
		Specific    struct {
			Data struct {
				Compat string `json:"compat"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	if err := json.Unmarshal([]byte(testkit.Run(t, "qemu-img", "info", "--output=json", out)), &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != "qcow2" || info.VirtualSize != size || info.Specific.Data.Compat != "1.1" {
		t.Errorf("qemu-img info = %+v, want qcow2, %d bytes, compat 1.1", info, size)
	}
	if o := testkit.Run(t, "qemu-img", "check", out); !strings.Contains(o, "No errors were found") {
		t.Errorf("qemu-img check:\n%s", o)
	}
	back := filepath.Join(dir, "back.img")
	testkit.Run(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", out, back)
	a, _ := os.ReadFile(raw)
	b, _ := os.ReadFile(back)
	if !bytes.Equal(a, b) {
		t.Error("qcow2 converted back to raw differs from the original")
	}

	// Deterministic: a second conversion gives the same bytes.
	out2 := filepath.Join(dir, "disk2.qcow2")
	if err := Convert(context.Background(), raw, out2); err != nil {
		t.Fatal(err)
	}
	q1, _ := os.ReadFile(out)
	q2, _ := os.ReadFile(out2)
	if !bytes.Equal(q1, q2) {
		t.Error("two conversions of the same image differ")
	}
}

func TestConvertErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "x.qcow2")
	if err := Convert(context.Background(), filepath.Join(dir, "missing.img"), out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Convert(missing) = %v, want ErrNotExist", err)
	}
	// A directory is not a raw image: qemu-img fails and nothing is left behind.
	if err := Convert(context.Background(), dir, out); !errors.Is(err, ErrQemuImg) {
		t.Errorf("Convert(directory) = %v, want ErrQemuImg", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind %v", ents)
	}
}
