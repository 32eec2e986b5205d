package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/buildctl"
	"github.com/petrel-os/petrel/tools/image"
	"github.com/petrel-os/petrel/tools/ova"
	"github.com/petrel-os/petrel/tools/project"
)

// extract copies length bytes at offset of img into a new sparse file.
func extract(t *testing.T, img string, offset, length int64) string {
	t.Helper()
	in, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := filepath.Join(t.TempDir(), fmt.Sprintf("part-%d.img", offset))
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(length); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	zero := make([]byte, 1<<20)
	for pos := int64(0); pos < length; pos += int64(len(buf)) {
		n, err := in.ReadAt(buf[:min(int64(len(buf)), length-pos)], offset+pos)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], zero[:n]) {
			if _, err := f.WriteAt(buf[:n], pos); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// runOK runs a host tool and returns its output (testkit.Run).
func runOK(t *testing.T, name string, args ...string) string {
	t.Helper()
	return testkit.Run(t, name, args...)
}

// TestImageChecks checks the built image with the real tools as oracles:
// the partition table against the plan, every filesystem, and dm-verity.
func TestImageChecks(t *testing.T) {
	img, rootHash := builtImage(t)
	if out := runOK(t, "sgdisk", "-v", img); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v: %s", out)
	}
	var sf struct {
		PartitionTable struct {
			Partitions []struct {
				Node, Type, UUID, Name, Attrs string
				Start, Size                   int64
			}
		}
	}
	if err := json.Unmarshal([]byte(runOK(t, "sfdisk", "--json", img)), &sf); err != nil {
		t.Fatal(err)
	}
	plan, err := disklayout.Plan(disklayout.Options{OSImageSizeGiB: 2, DataImageSizeGiB: 1, Unified: true, InPlaceUpdates: true, LabelPrefix: "PETREL"})
	if err != nil {
		t.Fatal(err)
	}
	got := sf.PartitionTable.Partitions
	if len(got) != len(plan.OSDisk.Partitions) {
		t.Fatalf("sfdisk lists %d partitions, the plan has %d", len(got), len(plan.OSDisk.Partitions))
	}
	for i, want := range plan.OSDisk.Partitions {
		g := got[i]
		if g.Name != want.Label || !strings.EqualFold(g.Type, want.Type.String()) || g.Start != want.OffsetMiB*2048 || g.Size != want.SizeMiB*2048 {
			t.Errorf("partition %d = %s %s start %d size %d; plan: %s %s start %d size %d", i+1, g.Name, g.Type, g.Start, g.Size,
				want.Label, want.Type, want.OffsetMiB*2048, want.SizeMiB*2048)
		}
		if want.Key == disklayout.KeyBootA && g.Attrs != "GUID:48,56" {
			t.Errorf("BOOT-A attributes = %q, want GUID:48,56 (priority 1, successful)", g.Attrs)
		}
	}
	part := func(key string) string {
		p, _ := plan.OSDisk.Partition(key)
		return extract(t, img, p.OffsetBytes(), p.SizeBytes())
	}
	root, hash := part(disklayout.KeyRootA), part(disklayout.KeyHashA)
	runOK(t, "fsck.erofs", root)
	runOK(t, "veritysetup", "verify", root, hash, rootHash)
	for _, k := range []string{disklayout.KeyBootA, disklayout.KeyPrivate, disklayout.KeyDataA} {
		runOK(t, "e2fsck", "-fn", part(k))
	}
	runOK(t, "fsck.vfat", "-n", part(disklayout.KeyEFIA))
	// One flipped byte of the root must fail verification.
	f, err := os.OpenFile(root, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0x5a}, 8192+17); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command("veritysetup", "verify", root, hash, rootHash).CombinedOutput(); err == nil {
		t.Errorf("veritysetup verify accepted a corrupted root:\n%s", out)
	}
}

func buildctlOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{"-C", projectRoot(t)}, args...)
	if code := buildctl.Main(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("buildctl %s = %d\n%s\n%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	return out.String()
}

// imageDigests returns the SHA-256 of every file of the latest image of
// variant under buildDir, by file name.
func imageDigests(t *testing.T, buildDir, variant string) map[string]string {
	t.Helper()
	dir, err := image.Latest(buildDir, variant, "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		m[e.Name()] = testkit.FileSHA256(t, filepath.Join(dir, e.Name()))
	}
	return m
}

// TestReproducibleImage builds the default variant a second time, from the
// same commit, into a fresh build directory (no cached RPMs, Go build
// cache or state; only the verified download cache is shared), in another
// time zone and under another umask, by a separate buildctl process: every
// file of the image directory (the raw image, the update images, the
// inventory) must be byte-identical to the first build's.
func TestReproducibleImage(t *testing.T) {
	builtImage(t)
	root := projectRoot(t)
	first := imageDigests(t, filepath.Join(root, "build"), variant)
	if len(first) < 5 {
		t.Fatalf("image directory holds only %v", first)
	}

	fresh := t.TempDir()
	// The download cache holds files verified by SHA-512 on every use; a
	// copy (hard links) spares the archive, and proves nothing either way.
	testkit.RunCmd(t, exec.Command("mkdir", "-p", filepath.Join(fresh, "cache")))
	testkit.RunCmd(t, exec.Command("cp", "-al", filepath.Join(root, "build", "cache", "lookaside"), filepath.Join(fresh, "cache", "lookaside")))
	bin := testkit.GoBuild(t, "github.com/petrel-os/petrel/cmd/buildctl", filepath.Join(t.TempDir(), "buildctl"))
	cmd := exec.Command("sh", "-c", `umask 0077 && exec "$0" "$@"`, bin, "-C", root, "--variant", variant, "make")
	cmd.Env = append(os.Environ(), "TZ=Asia/Kathmandu", "BUILDSYS_BUILD_DIR="+fresh)
	start := time.Now()
	out := testkit.RunCmd(t, cmd)
	t.Logf("second build (fresh build directory, TZ=Asia/Kathmandu, umask 0077) took %.0fs:\n%s", time.Since(start).Seconds(), out)

	second := imageDigests(t, fresh, variant)
	for name, d := range first {
		switch s, ok := second[name]; {
		case !ok:
			t.Errorf("%s is missing from the second build", name)
		case s != d:
			t.Errorf("%s differs between the two builds of the same commit", name)
		}
	}
	for name := range second {
		if _, ok := first[name]; !ok {
			t.Errorf("%s exists only in the second build", name)
		}
	}
}

// TestOVA builds the vmware-dev variant and its OVA and checks them with
// parsers of their own and qemu-img: the OVA's members (the OVF first, then
// the manifest, then the disk, DSP0243), the manifest's digests against
// the members, the OVF's disk against the VMDK (file, streamOptimized
// format, capacity, controller and adapter type) and the VMDK against the
// raw image (qemu-img check, convert back).
func TestOVA(t *testing.T) {
	builtImage(t) // packages are built; this assembles another variant
	buildctlOK(t, "--variant", "vmware-dev", "make")
	ovaPath := strings.TrimSpace(buildctlOK(t, "--variant", "vmware-dev", "ova"))
	dir, err := image.Latest(filepath.Join(projectRoot(t), "build"), "vmware-dev", "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := image.FindDiskImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	vmdkPath := strings.TrimSuffix(raw, ".img") + ".vmdk"
	info := runOK(t, "qemu-img", "info", "--output=json", vmdkPath)
	if !strings.Contains(info, `"format": "vmdk"`) || !strings.Contains(info, `"create-type": "streamOptimized"`) {
		t.Errorf("qemu-img info: %s", info)
	}
	runOK(t, "qemu-img", "check", vmdkPath)
	back := filepath.Join(t.TempDir(), "back.img")
	runOK(t, "qemu-img", "convert", "-f", "vmdk", "-O", "raw", vmdkPath, back)
	if a, b := testkit.FileSHA256(t, raw), testkit.FileSHA256(t, back); a != b {
		t.Errorf("qemu-img convert of our vmdk back to raw differs from the raw image")
	}

	// Read the OVA: names, sizes and digests of the members, the small
	// ones in full.
	type member struct {
		name, sha256 string
		size         int64
		data         []byte
	}
	f, err := os.Open(ovaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var members []member
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.New()
		var small bytes.Buffer
		w := io.Writer(sum)
		if h.Size < 1<<20 {
			w = io.MultiWriter(sum, &small)
		}
		if _, err := io.Copy(w, tr); err != nil {
			t.Fatal(err)
		}
		members = append(members, member{h.Name, hex.EncodeToString(sum.Sum(nil)), h.Size, small.Bytes()})
	}
	if len(members) != 3 || !strings.HasSuffix(members[0].name, ".ovf") || !strings.HasSuffix(members[1].name, ".mf") || members[2].name != filepath.Base(vmdkPath) {
		t.Fatalf("OVA members = %+v, want the .ovf, the .mf, then %s", members, filepath.Base(vmdkPath))
	}
	ovfData, mf, disk := members[0].data, members[1].data, members[2]
	if disk.sha256 != testkit.FileSHA256(t, vmdkPath) {
		t.Errorf("the OVA's %s differs from the built VMDK", disk.name)
	}

	// The manifest names every other member once, with its digest.
	digests := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(mf), "\n"), "\n") {
		m := regexp.MustCompile(`^SHA256\(([^)]+)\)= ([0-9a-f]{64})$`).FindStringSubmatch(line)
		if m == nil {
			t.Errorf("manifest line %q is not SHA256(name)= digest", line)
			continue
		}
		if _, dup := digests[m[1]]; dup {
			t.Errorf("manifest names %s twice", m[1])
		}
		digests[m[1]] = m[2]
	}
	for _, m := range []member{members[0], disk} {
		if digests[m.name] != m.sha256 {
			t.Errorf("manifest digest of %s = %q, the member's is %s", m.name, digests[m.name], m.sha256)
		}
	}
	if len(digests) != 2 {
		t.Errorf("manifest names %d files, want the OVF and the disk", len(digests))
	}

	// The OVF, parsed here with encoding/xml, against the VMDK.
	var ovf struct {
		Files []struct {
			ID   string `xml:"id,attr"`
			Href string `xml:"href,attr"`
			Size string `xml:"size,attr"`
		} `xml:"References>File"`
		Disks []struct {
			ID       string `xml:"diskId,attr"`
			FileRef  string `xml:"fileRef,attr"`
			Capacity int64  `xml:"capacity,attr"`
			Units    string `xml:"capacityAllocationUnits,attr"`
			Format   string `xml:"format,attr"`
		} `xml:"DiskSection>Disk"`
		OS struct {
			OSType string `xml:"osType,attr"`
		} `xml:"VirtualSystem>OperatingSystemSection"`
		Items []struct {
			InstanceID, ResourceSubType, Parent, HostResource string
			ResourceType                                      int
		} `xml:"VirtualSystem>VirtualHardwareSection>Item"`
		Config []struct {
			Key   string `xml:"key,attr"`
			Value string `xml:"value,attr"`
		} `xml:"VirtualSystem>VirtualHardwareSection>Config"`
	}
	if err := xml.Unmarshal(ovfData, &ovf); err != nil {
		t.Fatalf("parse the OVF: %v\n%s", err, ovfData)
	}
	if len(ovf.Files) != 1 || ovf.Files[0].Href != disk.name || len(ovf.Disks) != 1 || ovf.Disks[0].FileRef != ovf.Files[0].ID {
		t.Fatalf("OVF References %+v and DiskSection %+v, want one disk, %s", ovf.Files, ovf.Disks, disk.name)
	}
	d := ovf.Disks[0]
	vf, err := os.Open(vmdkPath)
	if err != nil {
		t.Fatal(err)
	}
	defer vf.Close()
	vi, err := ova.ReadVMDK(vf)
	if err != nil {
		t.Fatal(err)
	}
	rawSize := func() int64 {
		st, err := os.Stat(raw)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}()
	if vi.CapacityBytes() != rawSize || len(vi.Descriptor.Extents) != 1 || int64(vi.Descriptor.Extents[0].Sectors)*512 != rawSize {
		t.Errorf("VMDK capacity %d bytes, extent %+v; the raw image has %d", vi.CapacityBytes(), vi.Descriptor.Extents, rawSize)
	}
	if e := vi.Descriptor.Extents; len(e) == 1 && e[0].File != disk.name {
		t.Errorf("VMDK extent names %q, the OVA holds it as %q", e[0].File, disk.name)
	}
	// The OVF's capacity is the publish size, max(hint, os + data) GiB:
	// VMware grows the disk to it on deployment, and first boot grows DATA.
	proj, err := project.Load(context.Background(), projectRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	v, err := proj.Variant("vmware-dev")
	if err != nil {
		t.Fatal(err)
	}
	l := v.ImageLayout
	publish := int64(max(l.PublishImageSizeHintGiB, l.OSImageSizeGiB+l.DataImageSizeGiB)) << 30
	if d.Units != "byte" || d.Capacity != publish || d.Capacity < rawSize {
		t.Errorf("OVF disk capacity %d %q, want the publish size %d bytes, no smaller than the VMDK's %d", d.Capacity, d.Units, publish, rawSize)
	}
	if d.Format != ova.StreamOptimized || vi.Descriptor.CreateType != "streamOptimized" {
		t.Errorf("OVF disk format %q, VMDK createType %q; want streamOptimized both", d.Format, vi.Descriptor.CreateType)
	}
	var controller string
	for _, it := range ovf.Items {
		if it.ResourceType == 17 && it.HostResource == "ovf:/disk/"+d.ID {
			for _, c := range ovf.Items {
				if c.InstanceID == it.Parent {
					controller = fmt.Sprintf("%d %s", c.ResourceType, c.ResourceSubType)
				}
			}
		}
	}
	adapter, _ := vi.Descriptor.Get("ddb.adapterType")
	// The image boots from NVMe on VMware (its initramfs has the nvme
	// driver); the VMDK format has no NVMe type and VMware's converter
	// writes lsilogic for NVMe disks (docs/formats/image-formats.md).
	if controller != "20 vmware.nvme.controller" || adapter != "lsilogic" {
		t.Errorf("the disk hangs on controller %q with ddb.adapterType %q, want 20 vmware.nvme.controller and lsilogic", controller, adapter)
	}
	config := map[string]string{}
	for _, c := range ovf.Config {
		config[c.Key] = c.Value
	}
	if config["firmware"] != "efi" || ovf.OS.OSType != "other4xLinux64Guest" {
		t.Errorf("OVF firmware %q, guest %q; want efi and other4xLinux64Guest", config["firmware"], ovf.OS.OSType)
	}
}

// TestImageSysusers checks the users and groups the image build wrote into
// the factory /etc (tools/sysusers) against systemd-sysusers --root on the
// same inputs: the sysusers.d files of the built image's root and the
// factory passwd and group that packages/filesystem installs.
func TestImageSysusers(t *testing.T) {
	img, _ := builtImage(t)
	plan, err := disklayout.Plan(disklayout.Options{OSImageSizeGiB: 2, DataImageSizeGiB: 1, Unified: true, InPlaceUpdates: true, LabelPrefix: "PETREL"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := plan.OSDisk.Partition(disklayout.KeyRootA)
	tree := t.TempDir()
	runOK(t, "fsck.erofs", "--extract="+tree, extract(t, img, p.OffsetBytes(), p.SizeBytes()))
	confs, _ := filepath.Glob(filepath.Join(tree, "usr/lib/sysusers.d/*.conf"))
	if len(confs) < 3 {
		t.Fatalf("the image holds sysusers.d files %v, want systemd's and packages/host's", confs)
	}
	oracle := t.TempDir()
	for _, c := range confs {
		b, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		testkit.WriteFiles(t, oracle, map[string]string{"usr/lib/sysusers.d/" + filepath.Base(c): string(b)})
	}
	for _, name := range []string{"passwd", "group"} {
		b, err := os.ReadFile(filepath.Join(projectRoot(t), "packages", "filesystem", name))
		if err != nil {
			t.Fatal(err)
		}
		testkit.WriteFiles(t, oracle, map[string]string{"etc/" + name: string(b)})
	}
	runOK(t, "systemd-sysusers", "--root", oracle)
	for _, name := range []string{"passwd", "group"} {
		got, err := os.ReadFile(filepath.Join(tree, "usr/share/factory/etc", name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(oracle, "etc", name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("the image's factory %s differs from systemd-sysusers' on the same inputs\nimage:\n%s\nsystemd-sysusers:\n%s", name, got, want)
		}
	}
}
