package fsimage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/petrel-os/petrel/sources/outfile"
)

// EROFSOptions controls an EROFS image.
type EROFSOptions struct {
	// UUID is the filesystem UUID. Required: derive it from the build's
	// seed for reproducible images.
	UUID string
	// Epoch (SOURCE_DATE_EPOCH) becomes every file's timestamp (-T).
	Epoch int64
	// FileContexts is a SELinux file_contexts file used to label every
	// file (--file-contexts); empty for no labels.
	FileContexts string
	// Compression is passed to -z: "" (none), "lz4", "lz4hc" or with a
	// level, "lz4hc,12".
	Compression string
	// PclusterBytes is the physical cluster size (-C); zero keeps the
	// default. Upstream uses 262144.
	PclusterBytes int
	// MaxBytes, when non-zero, is the size of the destination (a ROOT
	// partition); a bigger image is a *TooSmallError.
	MaxBytes int64
	// What and Target name the filesystem and its destination in a
	// *TooSmallError; defaults "filesystem" and the output path.
	What, Target string
}

// EROFS builds an EROFS image of the tree at srcDir into the new file out,
// with every file owned by root:root.
func EROFS(ctx context.Context, srcDir, out string, opts EROFSOptions) (err error) {
	if err := opts.validate(); err != nil {
		return fmt.Errorf("build EROFS image %q: invalid options: %w", out, err)
	}
	if _, err := os.Stat(srcDir); err != nil {
		return fmt.Errorf("build EROFS image %q: %w", out, err)
	}
	if opts.What == "" {
		opts.What = "filesystem"
	}
	if opts.Target == "" {
		opts.Target = out
	}
	tmp, err := outfile.Create(out)
	if err != nil {
		return fmt.Errorf("build EROFS image %q: %w", out, err)
	}
	defer tmp.Discard()
	tmpName := tmp.Name()
	args := []string{"--quiet", "--all-root", "-T", strconv.FormatInt(opts.Epoch, 10), "-U", opts.UUID}
	if opts.FileContexts != "" {
		args = append(args, "--file-contexts="+opts.FileContexts)
	}
	if opts.Compression != "" {
		args = append(args, "-z"+opts.Compression)
	}
	if opts.PclusterBytes > 0 {
		args = append(args, "-C"+strconv.Itoa(opts.PclusterBytes))
	}
	args = append(args, tmpName, srcDir)
	env := append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(opts.Epoch, 10))
	if _, _, err := runTool(ctx, env, "mkfs.erofs", args...); err != nil {
		return fmt.Errorf("build EROFS image %q: %w", out, err)
	}
	st, err := os.Stat(tmpName)
	if err != nil {
		return fmt.Errorf("build EROFS image %q: %w", out, err)
	}
	if opts.MaxBytes > 0 && st.Size() > opts.MaxBytes {
		return &TooSmallError{What: opts.What, Target: opts.Target, NeedBytes: st.Size(), HaveBytes: opts.MaxBytes}
	}
	if err := tmp.Commit(); err != nil {
		return fmt.Errorf("build EROFS image %q: %w", out, err)
	}
	return nil
}

func (o EROFSOptions) validate() error {
	var errs []error
	if !uuidRE.MatchString(o.UUID) {
		errs = append(errs, fmt.Errorf("UUID: %q, want the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", o.UUID))
	}
	if o.Epoch < 0 {
		errs = append(errs, fmt.Errorf("Epoch: %d, want >= 0", o.Epoch))
	}
	switch o.Compression {
	case "", "lz4", "lz4hc":
	default:
		if len(o.Compression) < 7 || o.Compression[:6] != "lz4hc," {
			errs = append(errs, fmt.Errorf("Compression: %q, want \"\", \"lz4\", \"lz4hc\" or \"lz4hc,<level>\"", o.Compression))
		} else if lvl, err := strconv.Atoi(o.Compression[6:]); err != nil || lvl < 0 || lvl > 12 {
			errs = append(errs, fmt.Errorf("Compression: level in %q, want 0..12", o.Compression))
		}
	}
	if o.FileContexts != "" {
		if _, err := os.Stat(o.FileContexts); err != nil {
			errs = append(errs, fmt.Errorf("FileContexts: %w", err))
		}
	}
	return errors.Join(errs...)
}
