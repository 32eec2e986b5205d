package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/tools/esp"
	"github.com/petrel-os/petrel/tools/fsimage"
	"github.com/petrel-os/petrel/tools/grub"
)

// grubLayout maps the partition plan to the GRUB selection script.
func grubLayout(l *disklayout.Layout) grub.Layout {
	g := grub.DefaultLayout()
	if p, ok := l.Partition(disklayout.KeyEFIA); ok {
		g.ESPPartition = p.Number
	}
	if p, ok := l.Partition(disklayout.KeyBootA); ok {
		g.BootPartitionA = p.Number
	}
	if p, ok := l.Partition(disklayout.KeyBootB); ok {
		g.BootPartitionB = p.Number
	}
	g.EnvPath = bootstate.EnvPath
	return g
}

// buildDisk lays the partition images out on the OS disk (and the data disk
// of the split plan).
func (a *assembly) buildDisk(ctx context.Context, p *partitionImages) error {
	disk := a.layout.OSDisk
	path := filepath.Join(a.stage, a.names.Prefix+".img")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create disk image: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(disk.SizeBytes); err != nil {
		return fmt.Errorf("size disk image: %w", err)
	}
	if err := gpt.Write(ctx, f, disk.SizeBytes, disk.GPT(a.seed)); err != nil {
		return fmt.Errorf("write partition table: %w", err)
	}
	gl := grubLayout(a.layout)
	var gb grub.Builder
	efi, err := gb.EFI(ctx, gl)
	if err != nil {
		return fmt.Errorf("build GRUB for UEFI: %w", err)
	}
	env, err := bootstate.Initial().Env()
	if err != nil {
		return fmt.Errorf("encode initial boot state: %w", err)
	}
	block, err := env.Encode()
	if err != nil {
		return fmt.Errorf("encode initial boot state: %w", err)
	}
	espPart, _ := disk.Partition(disklayout.KeyEFIA)
	_, err = esp.WriteWithOptions(ctx, f, espPart.OffsetBytes(), espPart.SizeBytes(), []esp.File{
		{Path: "EFI/BOOT/BOOTX64.EFI", Data: efi},
		{Path: strings.TrimPrefix(bootstate.EnvPath, "/"), Data: block},
	}, esp.Options{Label: "EFI-SYSTEM", Epoch: a.in.Epoch})
	if err != nil {
		return fmt.Errorf("write EFI system partition: %w", err)
	}
	bios, err := gb.BIOS(ctx, gl)
	if err != nil {
		return fmt.Errorf("build GRUB for BIOS: %w", err)
	}
	biosPart, _ := disk.Partition(disklayout.KeyBIOS)
	if err := grub.InstallBIOS(ctx, f, bios, grub.BIOSPartition{
		StartLBA: uint64(biosPart.OffsetBytes() / gpt.SectorSize), Sectors: uint64(biosPart.SizeBytes() / gpt.SectorSize),
	}); err != nil {
		return fmt.Errorf("install GRUB for BIOS: %w", err)
	}
	for _, c := range []struct{ key, src string }{
		{disklayout.KeyBootA, p.boot}, {disklayout.KeyRootA, p.root}, {disklayout.KeyHashA, p.hash},
	} {
		part, _ := disk.Partition(c.key)
		if err := sparseCopy(f, part.OffsetBytes(), c.src, part.SizeBytes()); err != nil {
			return fmt.Errorf("write %s: %w", c.key, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync disk image: %w", err)
	}
	priv, _ := disk.Partition(disklayout.KeyPrivate)
	// An empty tree, for its root directory's label.
	privTree := filepath.Join(a.work, "private")
	if err := mkdirTree(privTree); err != nil {
		return fmt.Errorf("create PRIVATE tree: %w", err)
	}
	labels, err := a.labels(privTree, privateMount)
	if err != nil {
		return err
	}
	if err := fsimage.Ext4(ctx, privTree, path, priv.SizeBytes(), fsimage.Ext4Options{
		Label: "PRIVATE", UUID: a.uuid("fs/private"), Epoch: a.in.Epoch, InPlace: true, Offset: priv.OffsetBytes(),
		InodeRatio: 4096, InodeSize: 256, Labels: labels, What: "private partition", Target: "PRIVATE",
	}); err != nil {
		return fmt.Errorf("write PRIVATE: %w", err)
	}
	a.result.Image = path
	if a.layout.DataDisk == nil {
		data, _ := disk.Partition(disklayout.KeyDataA)
		return a.writeData(ctx, path, data)
	}
	return a.buildDataDisk(ctx)
}

// writeData formats the DATA partition with the directories that are
// bind-mounted at boot (/var and /opt live on DATA).
func (a *assembly) writeData(ctx context.Context, image string, part disklayout.Partition) error {
	tree := filepath.Join(a.work, "data")
	for _, d := range []string{"var", "opt"} {
		if err := mkdirTree(filepath.Join(tree, d)); err != nil {
			return fmt.Errorf("create DATA tree: %w", err)
		}
	}
	labels, err := a.labels(tree, dataMount)
	if err != nil {
		return err
	}
	if err := fsimage.Ext4(ctx, tree, image, part.SizeBytes(), fsimage.Ext4Options{
		Label: "DATA", UUID: a.uuid("fs/data"), Epoch: a.in.Epoch, InPlace: true, Offset: part.OffsetBytes(),
		NoReservedBlocks: true, Labels: labels, What: "data partition", Target: part.Key,
	}); err != nil {
		return fmt.Errorf("write %s: %w", part.Key, err)
	}
	return nil
}

// buildDataDisk writes the split plan's data disk.
func (a *assembly) buildDataDisk(ctx context.Context) error {
	disk := *a.layout.DataDisk
	path := filepath.Join(a.stage, a.names.Prefix+"-data.img")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create data disk image: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(disk.SizeBytes); err != nil {
		return fmt.Errorf("size data disk image: %w", err)
	}
	if err := gpt.Write(ctx, f, disk.SizeBytes, disk.GPT(a.seed)); err != nil {
		return fmt.Errorf("write data disk partition table: %w", err)
	}
	part, _ := disk.Partition(disklayout.KeyDataB)
	a.result.DataImage = path
	return a.writeData(ctx, path, part)
}
