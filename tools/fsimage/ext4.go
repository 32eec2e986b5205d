package fsimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/petrel-os/petrel/sources/outfile"
)

// Ext4Options controls an ext4 image.
type Ext4Options struct {
	Label string // volume label, at most 16 bytes
	// UUID is the filesystem UUID and the directory hash seed. Required:
	// derive it from the build's seed for reproducible images.
	UUID string
	// Epoch (SOURCE_DATE_EPOCH) becomes every superblock time, every
	// inode's atime, ctime and crtime, and the upper bound of mtimes
	// (newer source mtimes are clamped to it).
	Epoch int64
	// ReadOnly drops the journal (-O ^has_journal), as for BOOT and ROOT.
	ReadOnly bool
	// InPlace writes the filesystem into the existing file out at byte
	// Offset, leaving the rest of the file alone (a partition of a disk
	// image). Otherwise out is replaced by a new file of sizeBytes bytes.
	InPlace bool
	Offset  int64
	// BlockSize defaults to 4096.
	BlockSize int
	// InodeRatio (-i, bytes per inode) and InodeSize (-I); zero keeps
	// mkfs.ext4's defaults.
	InodeRatio int
	InodeSize  int
	// NoReservedBlocks reserves no blocks for root (-m 0), as for DATA.
	NoReservedBlocks bool
	// StripeBlocks sets stride and stripe_width (upstream ROOT uses 1024
	// blocks of 4 KiB).
	StripeBlocks int
	// Labels maps absolute paths inside the tree ("/usr/bin/x") to
	// SELinux contexts, stored as security.selinux xattrs.
	Labels map[string]string
	// Shrink runs resize2fs -M after building (update images); not with
	// InPlace.
	Shrink bool
	// What and Target name the filesystem and its destination in a
	// *TooSmallError ("root filesystem", "ROOT-A"); defaults "filesystem"
	// and the output path.
	What, Target string
}

// Ext4 builds an ext4 filesystem of sizeBytes bytes from the tree at
// srcDir into out. Every file is owned by root:root.
func Ext4(ctx context.Context, srcDir, out string, sizeBytes int64, opts Ext4Options) error {
	if _, err := os.Stat(srcDir); err != nil {
		return fmt.Errorf("build ext4 image %q: %w", out, err)
	}
	return buildExt4(ctx, srcDir, out, sizeBytes, opts)
}

// Ext4Empty builds an empty ext4 filesystem (PRIVATE, DATA).
func Ext4Empty(ctx context.Context, out string, sizeBytes int64, opts Ext4Options) error {
	return buildExt4(ctx, "", out, sizeBytes, opts)
}

func (o *Ext4Options) validate(sizeBytes int64) error {
	var errs []error
	if o.BlockSize == 0 {
		o.BlockSize = 4096
	}
	if o.BlockSize != 1024 && o.BlockSize != 2048 && o.BlockSize != 4096 {
		errs = append(errs, fmt.Errorf("BlockSize: %d, want 1024, 2048 or 4096", o.BlockSize))
	} else if sizeBytes <= 0 || sizeBytes%int64(o.BlockSize) != 0 {
		errs = append(errs, fmt.Errorf("size: %d bytes, want a positive multiple of the %d-byte block size", sizeBytes, o.BlockSize))
	}
	if !uuidRE.MatchString(o.UUID) {
		errs = append(errs, fmt.Errorf("UUID: %q, want the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", o.UUID))
	}
	if len(o.Label) > 16 {
		errs = append(errs, fmt.Errorf("Label: %q is longer than 16 bytes", o.Label))
	}
	if o.Epoch < 0 || o.Epoch > 1<<32-1 {
		errs = append(errs, fmt.Errorf("Epoch: %d, want 0..%d", o.Epoch, int64(1<<32-1)))
	}
	if o.Offset < 0 || (o.Offset != 0 && !o.InPlace) {
		errs = append(errs, fmt.Errorf("Offset: %d, only allowed (>= 0) with InPlace", o.Offset))
	}
	if o.Shrink && o.InPlace {
		errs = append(errs, errors.New("Shrink: not possible with InPlace"))
	}
	if o.What == "" {
		o.What = "filesystem"
	}
	return errors.Join(errs...)
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func buildExt4(ctx context.Context, srcDir, out string, sizeBytes int64, opts Ext4Options) (err error) {
	if err := opts.validate(sizeBytes); err != nil {
		return fmt.Errorf("build ext4 image %q: invalid options: %w", out, err)
	}
	if opts.Target == "" {
		opts.Target = out
	}
	var script []byte
	if srcDir != "" {
		if script, err = debugfsScript(srcDir, opts); err != nil {
			return fmt.Errorf("build ext4 image %q: %w", out, err)
		}
	}
	target := out
	var tmp *outfile.File // the new file, unless InPlace
	if opts.InPlace {
		st, err := os.Stat(out)
		if err != nil {
			return fmt.Errorf("build ext4 image in %q: %w", out, err)
		}
		if st.Size() < opts.Offset+sizeBytes {
			return fmt.Errorf("build ext4 image in %q: file is %d bytes, filesystem needs %d..%d", out, st.Size(), opts.Offset, opts.Offset+sizeBytes)
		}
	} else {
		if tmp, err = outfile.Create(out); err != nil {
			return fmt.Errorf("build ext4 image %q: %w", out, err)
		}
		defer tmp.Discard()
		target = tmp.Name()
		if err := tmp.Truncate(sizeBytes); err != nil {
			return fmt.Errorf("build ext4 image %q: %w", out, err)
		}
	}
	env := append(os.Environ(), "E2FSPROGS_FAKE_TIME="+strconv.FormatInt(opts.Epoch, 10))
	if _, _, err := runTool(ctx, env, "mkfs.ext4", mkfsArgs(srcDir, target, sizeBytes, opts)...); err != nil {
		var te *ToolError
		if srcDir != "" && errors.As(err, &te) && strings.Contains(te.Output, "Could not allocate") {
			need, nerr := estimateExt4(ctx, srcDir, sizeBytes, opts)
			if nerr != nil {
				return fmt.Errorf("build ext4 image %q: %w (and estimating the size needed failed: %w)", out, err, nerr)
			}
			return &TooSmallError{What: opts.What, Target: opts.Target, NeedBytes: need, HaveBytes: sizeBytes}
		}
		return fmt.Errorf("build ext4 image %q: %w", out, err)
	}
	dev := target
	if opts.Offset != 0 {
		dev = fmt.Sprintf("%s?offset=%d", target, opts.Offset)
	}
	if len(script) > 0 {
		if err := runDebugfs(ctx, env, dev, script); err != nil {
			return fmt.Errorf("build ext4 image %q: pin owners, times and labels: %w", out, err)
		}
	}
	if opts.Shrink {
		if _, _, err := runTool(ctx, env, "resize2fs", "-M", target); err != nil {
			return fmt.Errorf("build ext4 image %q: shrink: %w", out, err)
		}
	}
	if tmp != nil {
		if err := tmp.Commit(); err != nil {
			return fmt.Errorf("build ext4 image %q: %w", out, err)
		}
		return nil
	}
	if err := syncFile(target); err != nil {
		return fmt.Errorf("build ext4 image %q: %w", out, err)
	}
	return nil
}

func mkfsArgs(srcDir, target string, sizeBytes int64, opts Ext4Options) []string {
	ext := []string{"root_owner=0:0", "hash_seed=" + opts.UUID, "lazy_itable_init=0", "nodiscard"}
	if opts.Offset != 0 {
		ext = append(ext, "offset="+strconv.FormatInt(opts.Offset, 10))
	}
	if opts.StripeBlocks > 0 {
		s := strconv.Itoa(opts.StripeBlocks)
		ext = append(ext, "stride="+s, "stripe_width="+s)
	}
	args := []string{"-q", "-F", "-t", "ext4", "-b", strconv.Itoa(opts.BlockSize), "-U", opts.UUID, "-L", opts.Label, "-E", strings.Join(ext, ",")}
	if opts.ReadOnly {
		args = append(args, "-O", "^has_journal")
	}
	if opts.InodeRatio > 0 {
		args = append(args, "-i", strconv.Itoa(opts.InodeRatio))
	}
	if opts.InodeSize > 0 {
		args = append(args, "-I", strconv.Itoa(opts.InodeSize))
	}
	if opts.NoReservedBlocks {
		args = append(args, "-m", "0")
	}
	if srcDir != "" {
		args = append(args, "-d", srcDir)
	}
	return append(args, target, strconv.FormatInt(sizeBytes/1024, 10)+"k")
}

// debugfsScript returns the debugfs commands that make an image built
// from srcDir independent of who copied the tree and when: owners 0:0,
// atime and ctime at the epoch, mtime clamped to it, and SELinux labels.
func debugfsScript(srcDir string, opts Ext4Options) ([]byte, error) {
	var b bytes.Buffer
	var bad []string
	seen := map[string]bool{}
	err := filepath.WalkDir(srcDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(srcDir, path)
		if err != nil {
			return err
		}
		p := "/" + filepath.ToSlash(rel)
		if rel == "." {
			p = "/"
		}
		if strings.ContainsAny(p, "\"\\") || strings.IndexFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
			bad = append(bad, p)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mtime := info.ModTime().Unix()
		if mtime > opts.Epoch || mtime < 0 {
			mtime = opts.Epoch
		}
		q := strconv.Quote(p)
		if st, ok := info.Sys().(*syscall.Stat_t); ok && (st.Uid != 0 || st.Gid != 0) {
			fmt.Fprintf(&b, "sif %s uid 0\nsif %s gid 0\n", q, q)
		}
		fmt.Fprintf(&b, "sif %s atime @%d\nsif %s ctime @%d\nsif %s mtime @%d\n", q, opts.Epoch, q, opts.Epoch, q, mtime)
		if ctx, ok := opts.Labels[p]; ok {
			fmt.Fprintf(&b, "ea_set %s security.selinux %s\n", q, strconv.Quote(ctx))
			seen[p] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %q: %w", srcDir, err)
	}
	var errs []error
	if len(bad) > 0 {
		errs = append(errs, fmt.Errorf("paths with a quote, backslash or control character cannot be fixed up with debugfs: %q", bad))
	}
	var missing []string
	for p := range opts.Labels {
		if !seen[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		errs = append(errs, fmt.Errorf("Labels: paths not in the tree: %q", missing))
	}
	return b.Bytes(), errors.Join(errs...)
}

// runDebugfs runs a debugfs script on dev and fails on any error line.
func runDebugfs(ctx context.Context, env []string, dev string, script []byte) error {
	f, err := os.CreateTemp("", "debugfs-*.cmd")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(script); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	_, stderr, err := runTool(ctx, env, "debugfs", "-w", "-f", f.Name(), dev)
	if err != nil {
		return err
	}
	// debugfs exits 0 even when a command fails; it reports on stderr.
	var problems []string
	for _, line := range strings.Split(stderr, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "debugfs ") {
			problems = append(problems, line)
		}
	}
	if len(problems) > 0 {
		return &ToolError{Tool: "debugfs", Args: []string{"-w", "-f", "<script>", dev}, Output: strings.Join(problems, "\n"), Err: errors.New("commands failed")}
	}
	return nil
}

// estimateExt4 finds how large a filesystem srcDir needs: it builds one
// in a growing scratch file and asks resize2fs -P for the minimum.
func estimateExt4(ctx context.Context, srcDir string, have int64, opts Ext4Options) (int64, error) {
	var total int64
	err := filepath.WalkDir(srcDir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if info, err := d.Info(); err == nil {
			total += info.Size()
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "ext4-estimate-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	scratch := filepath.Join(dir, "fs.img")
	size := max(2*have, 2*total+64<<20)
	size = (size + int64(opts.BlockSize) - 1) / int64(opts.BlockSize) * int64(opts.BlockSize)
	o := opts
	o.Offset, o.InPlace, o.Shrink = 0, true, false
	env := append(os.Environ(), "E2FSPROGS_FAKE_TIME="+strconv.FormatInt(opts.Epoch, 10))
	for try := 0; ; try++ {
		if err := os.WriteFile(scratch, nil, 0o600); err != nil {
			return 0, err
		}
		if err := os.Truncate(scratch, size); err != nil {
			return 0, err
		}
		_, _, err := runTool(ctx, env, "mkfs.ext4", mkfsArgs(srcDir, scratch, size, o)...)
		if err == nil {
			break
		}
		if try == 3 {
			return 0, err
		}
		size *= 4
	}
	outStr, _, err := runTool(ctx, env, "resize2fs", "-P", scratch)
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`minimum size of the filesystem: (\d+)`).FindStringSubmatch(outStr)
	if m == nil {
		return 0, fmt.Errorf("parse resize2fs -P output %q", outStr)
	}
	blocks, _ := strconv.ParseInt(m[1], 10, 64)
	return blocks * int64(opts.BlockSize), nil
}

// runTool runs tool with args and returns its standard output and
// standard error; a failure is a *ToolError holding both.
func runTool(ctx context.Context, env []string, tool string, args ...string) (stdout, stderr string, err error) {
	path, err := lookTool(tool)
	if err != nil {
		return "", "", err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return o.String(), e.String(), &ToolError{Tool: tool, Args: args, Output: strings.TrimSpace(o.String() + e.String()), Err: err}
	}
	return o.String(), e.String(), nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}
