package image

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/tools/fsimage"
	"github.com/petrel-os/petrel/tools/grub"
	"github.com/petrel-os/petrel/tools/initrd"
	"github.com/petrel-os/petrel/tools/project"
)

// InitPath is where the os package installs the static initramfs /init.
const InitPath = "usr/libexec/petrel/petrel-init"

// SystemdPath is the init the initramfs hands over to.
const SystemdPath = "/usr/lib/systemd/systemd"

// initParams follow "--" on the kernel command line and go to systemd.
var initParams = []string{"systemd.log_target=journal-or-kmsg", "systemd.log_level=notice", "systemd.log_color=0", "systemd.show_status=true"}

// Where DATA and PRIVATE are mounted on a host.
const (
	dataMount    = "/local"
	privateMount = "/var/lib/petrel"
)

// hostMounts are the petrel.mount= parameters: the initramfs mounts DATA
// at /local (by its fixed partition GUID: DATA-A of the unified plan and
// the split plan's data disk share it), binds /var and /opt from it and
// mounts PRIVATE at /var/lib/petrel (by name: its GUID differs from image
// to image, and the grub.cfg of an update must find the disk's PRIVATE).
// Each source must name one partition: the initramfs looks on the boot
// disk first, then on exactly one other disk (the split plan's data disk),
// and grows the DATA it mounts to the end of its disk (docs/initramfs.md).
// Doing it before systemd starts keeps udev and fsck off the critical path
// of the boot (docs/host.md).
func hostMounts(privateLabel string) []string {
	return []string{
		"petrel.mount=PARTUUID=" + disklayout.DataPreferredGUID.String() + ":" + dataMount + ":ext4:nodev,nosuid,noatime",
		"petrel.mount=/local/var:/var:bind",
		"petrel.mount=/local/opt:/opt:bind",
		"petrel.mount=PARTLABEL=" + privateLabel + ":" + privateMount + ":ext4:nodev,nosuid,noexec,noatime",
	}
}

// selinuxParams are the kernel parameters for SELinux. Debian's kernel
// starts AppArmor unless told otherwise (SECURITY_SELINUX_BOOTPARAM is off,
// so selinux=1 means nothing): security=selinux selects SELinux. The mode
// is enforcing= (which wins over /etc/selinux/config for the initramfs and
// systemd alike): 1, unless the variant has the selinux-permissive image
// feature, the only way to boot permissive (docs/selinux.md).
func selinuxParams(v *project.Variant) []string {
	if v.Feature("selinux-permissive") {
		return []string{"security=selinux", "enforcing=0"}
	}
	return []string{"security=selinux", "enforcing=1"}
}

// prepareBoot moves the kernel out of the root, builds the initramfs from the
// root's module tree and the static init, and starts the BOOT tree.
func (a *assembly) prepareBoot(ctx context.Context, p *partitionImages) error {
	vmlinuz := filepath.Join(a.root, "boot", "vmlinuz")
	mods, _ := filepath.Glob(filepath.Join(a.root, "usr", "lib", "modules", "*"))
	if _, err := os.Stat(vmlinuz); err != nil || len(mods) == 0 {
		return fmt.Errorf("%w: %s: %w (need /boot/vmlinuz and /usr/lib/modules/<version>; include the kernel package in included-packages or a kit)",
			project.ErrInvalidInput, a.in.Variant.Path, ErrNoKernel)
	}
	if len(mods) > 1 {
		return fmt.Errorf("%w: %s: the closure installs %d kernel module trees %v; want exactly one", project.ErrInvalidInput, a.in.Variant.Path, len(mods), mods)
	}
	p.kernelVersion = filepath.Base(mods[0])
	initBin := filepath.Join(a.root, InitPath)
	if _, err := os.Stat(initBin); err != nil {
		return fmt.Errorf("%w: %s: the closure has no initramfs init /%s (from the os package): %w", project.ErrInvalidInput, a.in.Variant.Path, InitPath, err)
	}
	p.bootTree = filepath.Join(a.work, "boot")
	if err := mkdirTree(filepath.Join(p.bootTree, "grub")); err != nil {
		return fmt.Errorf("create BOOT tree: %w", err)
	}
	if err := os.Rename(vmlinuz, filepath.Join(p.bootTree, "vmlinuz")); err != nil {
		return fmt.Errorf("move kernel to the BOOT tree: %w", err)
	}
	out, err := os.Create(filepath.Join(p.bootTree, "initrd.img"))
	if err != nil {
		return fmt.Errorf("create initramfs: %w", err)
	}
	if err := out.Chmod(treeFileMode); err != nil {
		out.Close()
		return fmt.Errorf("create initramfs: %w", err)
	}
	// zstd: 9% smaller than gzip (2.3 against 2.5 MiB), so GRUB reads less,
	// and the kernel unpacks it faster (docs/performance.md).
	err = initrd.Build(ctx, out, initrd.Options{
		Init: initBin, ModuleDir: mods[0], Modules: initrd.DefaultModules(), ModTime: time.Unix(a.in.Epoch, 0).UTC(), Compression: initrd.Zstd,
	})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("build initramfs: %w", err)
	}
	// The rest of /boot (config, System.map) stays out of the image.
	rest, _ := os.ReadDir(filepath.Join(a.root, "boot"))
	for _, e := range rest {
		if err := os.RemoveAll(filepath.Join(a.root, "boot", e.Name())); err != nil {
			return fmt.Errorf("remove /boot/%s from the root: %w", e.Name(), err)
		}
	}
	return nil
}

// fileContexts returns the SELinux file_contexts of the policy in the
// closure, or "" when there is none.
func fileContexts(root string) string {
	m, _ := filepath.Glob(filepath.Join(root, "usr/share/factory/etc/selinux/*/contexts/files/file_contexts"))
	sort.Strings(m)
	if len(m) == 0 {
		return ""
	}
	return m[0]
}

// buildRoot packs the staging root into the root filesystem image.
func (a *assembly) buildRoot(ctx context.Context, p *partitionImages) error {
	part, _ := a.layout.Partition(disklayout.KeyRootA)
	p.root = filepath.Join(a.work, "root.img")
	if err := a.loadFileContexts(); err != nil {
		return err
	}
	if a.in.Variant.Feature("ext4-root-partition") {
		p.rootFS = "ext4"
		labels, err := a.labels(a.root, "/")
		if err != nil {
			return err
		}
		err = fsimage.Ext4(ctx, a.root, p.root, part.SizeBytes(), fsimage.Ext4Options{
			Label: "ROOT", UUID: a.uuid("fs/root"), Epoch: a.in.Epoch, ReadOnly: true, Shrink: true,
			StripeBlocks: 1024, Labels: labels, What: "root filesystem", Target: "ROOT-A",
		})
		if err != nil {
			return fmt.Errorf("build ext4 root: %w", err)
		}
	} else {
		p.rootFS = "erofs"
		err := fsimage.EROFS(ctx, a.root, p.root, fsimage.EROFSOptions{
			UUID: a.uuid("fs/root"), Epoch: a.in.Epoch, FileContexts: fileContexts(a.root),
			Compression: "lz4hc", MaxBytes: part.SizeBytes(), What: "root filesystem", Target: "ROOT-A",
		})
		if err != nil {
			return fmt.Errorf("build EROFS root: %w", err)
		}
	}
	st, err := os.Stat(p.root)
	if err != nil {
		return fmt.Errorf("stat root image: %w", err)
	}
	a.result.RootBytes = st.Size()
	return nil
}

// buildBootPartition writes the bank's grub.cfg and packs the BOOT tree.
func (a *assembly) buildBootPartition(ctx context.Context, p *partitionImages) error {
	m := a.in.Project.Manifest
	params := append(append([]string{}, a.in.Variant.KernelParameters...), selinuxParams(a.in.Variant)...)
	params = append(params, "init="+SystemdPath, "rootfstype="+p.rootFS)
	private, ok := a.layout.Partition(disklayout.KeyPrivate)
	if !ok {
		return fmt.Errorf("disk layout has no %s partition", disklayout.KeyPrivate)
	}
	params = append(params, hostMounts(private.Label)...)
	cfg, err := grub.BankGrubCfg(grub.BankConfig{
		Title:        fmt.Sprintf("%s %s (%s)", m.OS.PrettyName, m.ReleaseVersion, a.in.Variant.Name),
		KernelParams: params,
		InitParams:   initParams,
		Verity:       grub.Verity{DataBlocks: p.dataBlocks, RootHash: p.rootHash, Salt: p.salt},
	})
	if err != nil {
		return fmt.Errorf("generate grub.cfg: %w", err)
	}
	if err := writeTreeFile(filepath.Join(p.bootTree, "grub", "grub.cfg"), cfg); err != nil {
		return fmt.Errorf("write grub.cfg: %w", err)
	}
	part, _ := a.layout.Partition(disklayout.KeyBootA)
	p.boot = filepath.Join(a.work, "boot.img")
	labels, err := a.labels(p.bootTree, "/boot")
	if err != nil {
		return err
	}
	err = fsimage.Ext4(ctx, p.bootTree, p.boot, part.SizeBytes(), fsimage.Ext4Options{
		Label: "BOOT", UUID: a.uuid("fs/boot"), Epoch: a.in.Epoch, ReadOnly: true, Labels: labels, What: "boot partition", Target: "BOOT-A",
	})
	if err != nil {
		return fmt.Errorf("build BOOT filesystem: %w", err)
	}
	return nil
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
