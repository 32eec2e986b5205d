package initrd

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Compression selects how the cpio archive is compressed. The Debian 6.1
// kernel can unpack gzip, xz, zstd and lz4 initramfs images.
type Compression string

const (
	Gzip Compression = "gzip" // default; compress/gzip level 6, no name or time in the header
	Zstd Compression = "zstd" // klauspost/compress/zstd, single-threaded for stable output
	None Compression = "none" // plain cpio, for inspection
)

// Options describes one initramfs.
type Options struct {
	// Init is the host path of the static petrel-init binary (built with
	// CGO_ENABLED=0); it becomes /init.
	Init string
	// ModuleDir is the kernel's module tree, .../lib/modules/<kver>. The
	// base name is the kernel version used for paths in the archive.
	ModuleDir string
	// Modules are the module names to include, with their dependencies.
	// Use DefaultModules for Petrel images.
	Modules []string
	// Compression defaults to Gzip.
	Compression Compression
	// ModTime is the mtime of every entry (use SOURCE_DATE_EPOCH). The zero
	// value means the Unix epoch.
	ModTime time.Time
}

// DefaultModules is what a Petrel image needs before its root exists:
// disk drivers for QEMU/KVM (virtio), EC2 Nitro and other NVMe machines,
// dm-verity, the root file system types, and the accelerated SHA-256 that
// verity uses when the CPU has it (under TCG it reports ENODEV, which /init
// tolerates).
func DefaultModules() []string {
	return []string{
		"virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod", "nvme",
		"dm_verity", "erofs", "ext4", "sha256_ssse3",
	}
}

// Build writes a compressed cpio newc archive to out with, in sorted order:
// /init, /etc/modules.order (absolute module paths in load order, each
// followed by ": " and the paths of the modules it must be loaded after,
// Module.After, when it has any), the
// uncompressed modules under /lib/modules/<kver>/, and the empty mount
// points /dev, /proc, /sys and /newroot. All entries are owned by 0:0 with
// mtime opts.ModTime; there are no device nodes. The same inputs always
// give the same bytes.
func Build(ctx context.Context, out io.Writer, opts Options) error {
	if err := opts.validate(); err != nil {
		return err
	}
	kver := filepath.Base(filepath.Clean(opts.ModuleDir))
	tree, err := openTree(ctx, opts.ModuleDir)
	if err != nil {
		return err
	}
	mods, err := tree.resolve(ctx, opts.Modules)
	if err != nil {
		return err
	}
	initBin, err := os.ReadFile(opts.Init)
	if err != nil {
		return fmt.Errorf("read init binary: %w", err)
	}
	if len(initBin) < 4 || !bytes.Equal(initBin[:4], []byte("\x7fELF")) {
		return fmt.Errorf("read init binary %q: not an ELF executable", opts.Init)
	}

	files := map[string][]byte{"init": initBin}
	modes := map[string]uint32{"init": modeFile | 0o755}
	var order strings.Builder
	archivePath := map[string]string{}
	for _, m := range mods {
		archivePath[m.Name] = "/" + m.ArchivePath(kver)
	}
	for _, m := range mods {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("build initramfs: %w", err)
		}
		data, err := tree.readModule(m.Path)
		if err != nil {
			return err
		}
		p := m.ArchivePath(kver)
		files[p] = data
		modes[p] = modeFile | 0o644
		order.WriteString("/" + p)
		for i, a := range m.After {
			sep := " "
			if i == 0 {
				sep = ": "
			}
			order.WriteString(sep + archivePath[a])
		}
		order.WriteString("\n")
	}
	files["etc/modules.order"] = []byte(order.String())
	modes["etc/modules.order"] = modeFile | 0o644
	for _, d := range []string{"dev", "proc", "sys", "newroot"} {
		modes[d] = modeDir | 0o755
	}
	for p := range files {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			modes[d] = modeDir | 0o755
		}
	}
	names := make([]string, 0, len(modes))
	for n := range modes {
		names = append(names, n)
	}
	sort.Strings(names)

	cw, finish, err := compressor(out, opts.Compression)
	if err != nil {
		return err
	}
	w := &cpioWriter{w: cw, mtime: opts.ModTime.Unix()}
	if opts.ModTime.IsZero() {
		w.mtime = 0
	}
	for _, n := range names {
		if err := w.entry(n, modes[n], files[n]); err != nil {
			return err
		}
	}
	if err := w.close(); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return fmt.Errorf("compress initramfs: %w", err)
	}
	return nil
}

func (o Options) validate() error {
	var errs []error
	if o.Init == "" {
		errs = append(errs, errors.New("Init: path of the petrel-init binary is required"))
	}
	if o.ModuleDir == "" {
		errs = append(errs, errors.New("ModuleDir: path of lib/modules/<kver> is required"))
	}
	switch o.Compression {
	case "", Gzip, Zstd, None:
	default:
		errs = append(errs, fmt.Errorf("Compression: %q: expected %q, %q or %q", o.Compression, Gzip, Zstd, None))
	}
	if len(errs) > 0 {
		return fmt.Errorf("build initramfs: invalid options: %w", errors.Join(errs...))
	}
	return nil
}

func compressor(out io.Writer, c Compression) (io.Writer, func() error, error) {
	switch c {
	case "", Gzip:
		zw, err := gzip.NewWriterLevel(out, gzip.DefaultCompression)
		if err != nil {
			return nil, nil, fmt.Errorf("start gzip: %w", err)
		}
		return zw, zw.Close, nil
	case Zstd:
		zw, err := zstd.NewWriter(out, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedBestCompression),
			zstd.WithWindowSize(1<<20), zstd.WithEncoderCRC(true))
		if err != nil {
			return nil, nil, fmt.Errorf("start zstd: %w", err)
		}
		return zw, zw.Close, nil
	default:
		return out, func() error { return nil }, nil
	}
}
