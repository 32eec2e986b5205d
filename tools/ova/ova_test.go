package ova

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/vmdk"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

const unifiedTemplate = "../../variants/vmware-dev/template.ovf"

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeDisk writes a 1 MiB raw disk holding content at its start and
// converts it into the streamOptimized VMDK dir/name, as the image build
// does (opts as given).
func writeDisk(t *testing.T, dir, name, content string, opts vmdk.Options) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "raw.img")
	testkit.WriteFiles(t, filepath.Dir(raw), map[string]string{"raw.img": content})
	if err := os.Truncate(raw, 1<<20); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := vmdk.ConvertFile(context.Background(), raw, p, opts); err != nil {
		t.Fatal(err)
	}
	return p
}

type member struct {
	hdr  *tar.Header
	data []byte
}

func readOVA(t *testing.T, path string) []member {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ms []member
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return ms
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, member{h, data})
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestPack(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		template string
		disks    []string // names; content is "content of <name>"
		wantOrd  []string
	}{
		{"unified", unifiedTemplate, []string{"petrel-vmware-dev-x86_64-1.0.0.vmdk"},
			[]string{"petrel.ovf", "petrel.mf", "petrel-vmware-dev-x86_64-1.0.0.vmdk"}},
		{"split", "testdata/split.ovf", []string{"os.vmdk", "data.vmdk"},
			[]string{"petrel.ovf", "petrel.mf", "os.vmdk", "data.vmdk"}},
		{"split-data-first", "testdata/split-data-first.ovf", []string{"os.vmdk", "data.vmdk"},
			[]string{"petrel.ovf", "petrel.mf", "data.vmdk", "os.vmdk"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var disks []Disk
			for i, n := range tt.disks {
				disks = append(disks, Disk{Path: writeDisk(t, dir, n, "content of "+n, vmdk.Options{}), SizeGiB: int64(2 + 18*i)})
			}
			out := filepath.Join(dir, "petrel.ova")
			mtime := time.Unix(1700000000, 0)
			if err := Pack(context.Background(), out, readFile(t, tt.template), disks, Options{TemplateName: tt.template, ModTime: mtime}); err != nil {
				t.Fatalf("Pack: %v", err)
			}
			ms := readOVA(t, out)
			var names []string
			for _, m := range ms {
				names = append(names, m.hdr.Name)
				h := m.hdr
				if h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(mtime) || h.Uname != "" || h.Typeflag != tar.TypeReg {
					t.Errorf("%s: header mode %o uid %d gid %d mtime %v uname %q", h.Name, h.Mode, h.Uid, h.Gid, h.ModTime, h.Uname)
				}
			}
			if strings.Join(names, " ") != strings.Join(tt.wantOrd, " ") {
				t.Fatalf("OVA members = %q, want %q", names, tt.wantOrd)
			}
			// The manifest covers the OVF and every disk with its real digest.
			var want strings.Builder
			fmt.Fprintf(&want, "SHA256(%s)= %s\n", ms[0].hdr.Name, sum(ms[0].data))
			for _, m := range ms[2:] {
				if !bytes.Equal(m.data, readFile(t, filepath.Join(dir, m.hdr.Name))) {
					t.Errorf("%s differs from the disk file", m.hdr.Name)
				}
				fmt.Fprintf(&want, "SHA256(%s)= %s\n", m.hdr.Name, sum(m.data))
			}
			if string(ms[1].data) != want.String() {
				t.Errorf("manifest =\n%s\nwant\n%s", ms[1].data, want.String())
			}
			// The rendered OVF is a golden file.
			golden := filepath.Join("testdata", tt.name+".ovf.golden")
			if *update {
				if err := os.WriteFile(golden, ms[0].data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if g := readFile(t, golden); !bytes.Equal(g, ms[0].data) {
				t.Errorf("rendered OVF differs from %s (run with -update):\n%s", golden, ms[0].data)
			}
			// Same inputs, same bytes.
			out2 := filepath.Join(dir, "again", "petrel.ova")
			if err := os.Mkdir(filepath.Dir(out2), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := Pack(context.Background(), out2, readFile(t, tt.template), disks, Options{ModTime: mtime}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readFile(t, out), readFile(t, out2)) {
				t.Error("packing twice gives different OVAs")
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	const name = "variants/x/template.ovf"
	refs := func(files ...string) string {
		s := `<Envelope xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References>`
		for _, f := range files {
			s += `<File ovf:href="` + f + `"/>`
		}
		return s + "</References>\n<Disk ovf:capacity=\"{{OS_DISK_BYTES}}\"/></Envelope>"
	}
	one := []Disk{{Path: "/x/os.vmdk", SizeGiB: 2}}
	two := []Disk{{Path: "/x/os.vmdk", SizeGiB: 2}, {Path: "/x/data.vmdk", SizeGiB: 20}}
	for _, tt := range []struct {
		name  string
		tmpl  string
		disks []Disk
		want  []string
		is    error
	}{
		{"leftover placeholder", refs("{{OS_DISK}}") + "{{PK_CERT_DER_HEX}}", one,
			[]string{name, "line 2: unknown placeholder {{PK_CERT_DER_HEX}}"}, ErrTemplate},
		{"stray braces", refs("{{OS_DISK}}") + "{{ oops", one, []string{name, `line 2: stray "{{"`}, ErrTemplate},
		{"data disk without placeholder", refs("{{OS_DISK}}"), two, []string{"{{DATA_DISK}} is missing"}, ErrTemplate},
		{"placeholder without data disk", refs("{{OS_DISK}}", "{{DATA_DISK}}") + "{{DATA_DISK_BYTES}}", one,
			[]string{"{{DATA_DISK}} is used", "{{DATA_DISK_BYTES}} is used"}, ErrTemplate},
		{"no OS disk placeholder", refs("os.vmdk"), one, []string{"{{OS_DISK}} is missing"}, ErrTemplate},
		{"references mismatch", refs("{{OS_DISK}}", "other.vmdk"), one, []string{"References lists"}, ErrTemplate},
		{"not XML", "{{OS_DISK}} {{OS_DISK_BYTES}} <", one, []string{"parse OVF"}, ErrTemplate},
		{"no disks", refs("{{OS_DISK}}"), nil, []string{"got 0 disks"}, ErrInvalidInput},
		{"bad size", refs("{{OS_DISK}}"), []Disk{{Path: "os.vmdk"}}, []string{"size 0 GiB"}, ErrInvalidInput},
		{"same name", refs("{{OS_DISK}}", "{{DATA_DISK}}"), []Disk{{Path: "a/d.vmdk", SizeGiB: 1}, {Path: "b/d.vmdk", SizeGiB: 1}},
			[]string{`"d.vmdk" used twice`}, ErrInvalidInput},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render([]byte(tt.tmpl), name, tt.disks)
			if !errors.Is(err, tt.is) {
				t.Fatalf("Render = %v, want %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Render error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestPackMissingDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "p.ova")
	err := Pack(context.Background(), out, readFile(t, unifiedTemplate), []Disk{{Path: filepath.Join(dir, "nope.vmdk"), SizeGiB: 2}}, Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Pack with a missing disk = %v, want ErrNotExist", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind %v", ents)
	}
}

// TestPackChecksDisks changes one thing of the unified template or of the
// VMDK at a time: Pack must refuse an OVF that does not agree with its
// disk, naming the disagreement.
func TestPackChecksDisks(t *testing.T) {
	t.Parallel()
	tmpl := string(readFile(t, unifiedTemplate))
	const name = "petrel-vmware-dev-x86_64-1.0.0.vmdk"
	for _, tt := range []struct {
		name     string
		from, to string // template edit
		opts     vmdk.Options
		want     string
	}{
		{name: "as shipped"},
		{name: "IDE adapter on NVMe", opts: vmdk.Options{AdapterType: "ide"}, want: `ddb.adapterType is "ide", want "lsilogic" for controller 3`},
		{name: "IDE controller", from: "<rasd:ResourceSubType>vmware.nvme.controller</rasd:ResourceSubType>\n        <rasd:ResourceType>20</rasd:ResourceType>",
			to: "<rasd:ResourceType>5</rasd:ResourceType>", want: `ddb.adapterType is "lsilogic", want "ide"`},
		{name: "SATA controller", from: "vmware.nvme.controller", to: "vmware.sata.ahci", want: "is not one a Petrel VMDK can be attached to"},
		{name: "capacity too small", from: `ovf:capacity="{{OS_DISK_BYTES}}"`, to: `ovf:capacity="4096"`, want: "OVF capacity 4096 bytes is smaller than the VMDK's 1048576"},
		{name: "capacity in MiB", from: `ovf:capacity="{{OS_DISK_BYTES}}" ovf:capacityAllocationUnits="byte"`, to: `ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^20"`},
		{name: "flat format", from: "#streamOptimized", to: "#monolithicFlat", want: "OVF format"},
		{name: "disk on no controller", from: "<rasd:Parent>3</rasd:Parent>", to: "<rasd:Parent>9</rasd:Parent>", want: `Parent "9" names no hardware item`},
		{name: "disk not attached", from: "ovf:/disk/os-disk", to: "ovf:/disk/other", want: "no disk item (ResourceType 17) with HostResource ovf:/disk/os-disk"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tt.from != "" && !strings.Contains(tmpl, tt.from) {
				t.Fatalf("the template has no %q", tt.from)
			}
			edited := strings.Replace(tmpl, tt.from, tt.to, 1)
			disk := Disk{Path: writeDisk(t, dir, name, "os", tt.opts), SizeGiB: 3}
			err := Pack(context.Background(), filepath.Join(dir, "p.ova"), []byte(edited), []Disk{disk}, Options{TemplateName: "template.ovf"})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Pack = %v, want success", err)
				}
				return
			}
			if !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "template.ovf does not agree with the disks") {
				t.Errorf("Pack = %v, want ErrTemplate saying %q", err, tt.want)
			}
			if _, serr := os.Stat(filepath.Join(dir, "p.ova")); serr == nil {
				t.Error("Pack wrote an OVA it refused")
			}
		})
	}
}
