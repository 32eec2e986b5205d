package grub

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Platform names a GRUB target and the Debian package that ships it.
type Platform struct {
	Format  string // grub-mkimage -O value
	Package string // Debian package that provides the module directory
	extra   []string
}

// EFIPlatform is x86_64 UEFI (BOOTX64.EFI).
func EFIPlatform() Platform {
	return Platform{Format: "x86_64-efi", Package: "grub-efi-amd64-bin", extra: []string{"efi_gop"}}
}

// BIOSPlatform is i386-pc (boot.img + core.img).
func BIOSPlatform() Platform {
	return Platform{Format: "i386-pc", Package: "grub-pc-bin", extra: []string{"biosdisk"}}
}

// Modules returns the modules baked into the image for p: what the selection
// script and the per-bank grub.cfg use, plus memdisk and tar for the
// embedded script. grub-mkimage adds their dependencies.
func (p Platform) Modules() []string {
	base := []string{
		"memdisk", "tar", "normal", "configfile", "part_gpt", "fat", "ext2",
		"loadenv", "probe", "regexp", "test", "true", "echo", "sleep",
		"halt", "reboot", "serial", "terminal", "linux", "boot",
	}
	return append(base, p.extra...)
}

// MemdiskPrefix is the GRUB prefix of both images: normal mode reads
// $prefix/grub.cfg, which is the selection script in the memdisk.
const MemdiskPrefix = "(memdisk)/boot/grub"

// Builder runs grub-mkimage. The zero value uses grub-mkimage from PATH and
// the modules under /usr/lib/grub.
type Builder struct {
	// Tool is the grub-mkimage program; empty means "grub-mkimage".
	Tool string
	// ModuleRoot holds one module directory per platform; empty means
	// /usr/lib/grub.
	ModuleRoot string
}

// Memdisk returns a tar archive holding only boot/grub/grub.cfg = script.
// Every header field is fixed, so the archive (and the image) is
// reproducible; grub-mkstandalone's memdisk is not (see docs/boot.md).
func Memdisk(script []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0).UTC()
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "boot/", Mode: 0o755, ModTime: epoch, Format: tar.FormatUSTAR},
		{Typeflag: tar.TypeDir, Name: "boot/grub/", Mode: 0o755, ModTime: epoch, Format: tar.FormatUSTAR},
		{Typeflag: tar.TypeReg, Name: "boot/grub/grub.cfg", Mode: 0o644, Size: int64(len(script)), ModTime: epoch, Format: tar.FormatUSTAR},
	} {
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("write memdisk entry %s: %w", h.Name, err)
		}
	}
	if _, err := tw.Write(script); err != nil {
		return nil, fmt.Errorf("write memdisk grub.cfg: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close memdisk: %w", err)
	}
	return buf.Bytes(), nil
}

// MkImage runs grub-mkimage for p with script in the memdisk and returns
// the image: BOOTX64.EFI for EFIPlatform, core.img for BIOSPlatform.
func (b Builder) MkImage(ctx context.Context, p Platform, script []byte) ([]byte, error) {
	tool := b.Tool
	if tool == "" {
		tool = "grub-mkimage"
	}
	if _, err := exec.LookPath(tool); err != nil {
		return nil, fmt.Errorf("find %s (Debian package grub-common): %w", tool, err)
	}
	modDir := filepath.Join(b.moduleRoot(), p.Format)
	if _, err := os.Stat(filepath.Join(modDir, "moddep.lst")); err != nil {
		return nil, fmt.Errorf("find GRUB modules for %s (Debian package %s): %w", p.Format, p.Package, err)
	}
	md, err := Memdisk(script)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "petrel-grub-")
	if err != nil {
		return nil, fmt.Errorf("create temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	mdPath := filepath.Join(dir, "memdisk.tar")
	if err := os.WriteFile(mdPath, md, 0o644); err != nil {
		return nil, fmt.Errorf("write memdisk: %w", err)
	}
	out := filepath.Join(dir, "image")
	args := append([]string{"-d", modDir, "-O", p.Format, "-m", mdPath, "-p", MemdiskPrefix, "-o", out}, p.Modules()...)
	cmd := exec.CommandContext(ctx, tool, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run grub-mkimage -O %s: %w: %s", p.Format, err, strings.TrimSpace(stderr.String()))
	}
	img, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("read grub-mkimage output: %w", err)
	}
	return img, nil
}

// EFI returns BOOTX64.EFI with the selection script for l.
func (b Builder) EFI(ctx context.Context, l Layout) ([]byte, error) {
	script, err := SelectScript(l)
	if err != nil {
		return nil, err
	}
	img, err := b.MkImage(ctx, EFIPlatform(), script)
	if err != nil {
		return nil, fmt.Errorf("build BOOTX64.EFI: %w", err)
	}
	return img, nil
}

// BIOSImages are the two pieces of the BIOS boot chain.
type BIOSImages struct {
	// Boot is boot.img (512 bytes) for the MBR, not yet patched.
	Boot []byte
	// Core is core.img (diskboot.img + kernel + modules + memdisk) for the
	// BIOS-BOOT partition, not yet patched.
	Core []byte
}

// BIOS returns boot.img and core.img with the selection script for l.
func (b Builder) BIOS(ctx context.Context, l Layout) (BIOSImages, error) {
	script, err := SelectScript(l)
	if err != nil {
		return BIOSImages{}, err
	}
	p := BIOSPlatform()
	core, err := b.MkImage(ctx, p, script)
	if err != nil {
		return BIOSImages{}, fmt.Errorf("build core.img: %w", err)
	}
	boot, err := os.ReadFile(filepath.Join(b.moduleRoot(), p.Format, "boot.img"))
	if err != nil {
		return BIOSImages{}, fmt.Errorf("read boot.img (Debian package %s): %w", p.Package, err)
	}
	if len(boot) != sectorSize {
		return BIOSImages{}, fmt.Errorf("read boot.img: %d bytes, want %d", len(boot), sectorSize)
	}
	return BIOSImages{Boot: boot, Core: core}, nil
}

func (b Builder) moduleRoot() string {
	if b.ModuleRoot != "" {
		return b.ModuleRoot
	}
	return "/usr/lib/grub"
}

// errTooBig reports a core.img that does not fit its partition.
var errTooBig = errors.New("core.img does not fit the BIOS boot partition")
