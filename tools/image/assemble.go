package image

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/selinux"
	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/sbom"
	"github.com/petrel-os/petrel/tools/sysusers"
)

// ErrNoKernel is returned when the variant's closure installs no kernel.
var ErrNoKernel = errors.New("the package closure installs no kernel")

// Inputs is everything one image build depends on.
type Inputs struct {
	Project *project.Project
	Config  project.Config
	Variant *project.Variant
	// RPMs are the RPM files of the variant's package closure.
	RPMs []string
	// BuildID is the short commit id ("00000000" outside git).
	BuildID string
	// Epoch is SOURCE_DATE_EPOCH: the time of every file in the image.
	Epoch int64
	// TrustedRoot is the TUF root metadata of the update repository
	// (tools/repo's keys), shipped at updater.DefaultRootPath: the trust
	// anchor of the host's updater and settings migrator. Required.
	TrustedRoot []byte
	// Logger receives one line per step.
	Logger *slog.Logger
}

// Result describes a finished image build.
type Result struct {
	Names Names
	// Image is the raw OS disk; DataImage the split plan's data disk.
	Image, DataImage string
	// Artifacts are every file written to Names.Dir, sorted.
	Artifacts []string
	// RootHash is the dm-verity root hash of bank A (hex).
	RootHash string
	// RootBytes is the size of the root filesystem image.
	RootBytes int64
	// Steps are the durations of the assembly steps, in order.
	Steps []Step
}

// Step is one timed assembly step.
type Step struct {
	Name     string
	Duration time.Duration
}

// Make assembles the image of in.Variant into build/images and points the
// variant's "latest" link at it. A failed build leaves the previous output
// and link untouched.
func Make(ctx context.Context, in Inputs) (*Result, error) {
	if in.Logger == nil {
		in.Logger = slog.New(slog.DiscardHandler)
	}
	a, err := newAssembly(in)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(a.work)
	if err := a.run(ctx); err != nil {
		return nil, err
	}
	return a.result, nil
}

// assembly is the state of one Make call.
type assembly struct {
	in     Inputs
	osName string
	layout *disklayout.Layout
	names  Names
	seed   []byte
	work   string // scratch directory, removed at the end
	stage  string // final files are written here, then renamed to names.Dir
	root   string // staging root tree
	result *Result
	sbom   *sbom.Document // what the image holds (sbom.go)
	// contexts label the file systems the image build makes (labels.go);
	// nil when the closure has no SELinux policy.
	contexts *selinux.FileContexts
}

func newAssembly(in Inputs) (*assembly, error) {
	v := in.Variant
	if len(in.TrustedRoot) == 0 {
		return nil, fmt.Errorf("%w: no trusted root metadata for the image's updates (create keys with buildctl repo keys)", project.ErrInvalidInput)
	}
	osName := in.Project.Manifest.OS.Name
	plan, err := disklayout.Plan(disklayout.Options{
		OSImageSizeGiB:   v.ImageLayout.OSImageSizeGiB,
		DataImageSizeGiB: v.ImageLayout.DataImageSizeGiB,
		Unified:          v.ImageLayout.PartitionPlan == "unified",
		InPlaceUpdates:   v.Feature("in-place-updates"),
		LabelPrefix:      strings.ToUpper(osName),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: image-layout: %w", project.ErrInvalidInput, v.Path, err)
	}
	if !v.Feature("in-place-updates") {
		return nil, fmt.Errorf("%w: %s: image-features.in-place-updates = false is not supported yet: the A/B boot chain needs both banks",
			project.ErrInvalidInput, v.Path)
	}
	version := in.Project.Manifest.ReleaseVersion
	names := NewNames(in.Config.BuildDir, osName, v.Name, in.Config.Arch, version, in.BuildID)
	h := sha256.New()
	for _, s := range []string{"petrel-image-v1", osName, v.Name, in.Config.Arch, version, in.BuildID} {
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	if err := os.MkdirAll(names.VariantDir, 0o755); err != nil {
		return nil, fmt.Errorf("create image directory: %w", err)
	}
	work, err := os.MkdirTemp(names.VariantDir, ".work-")
	if err != nil {
		return nil, fmt.Errorf("create work directory: %w", err)
	}
	a := &assembly{
		in: in, osName: osName, layout: plan, names: names, seed: h.Sum(nil),
		work: work, stage: filepath.Join(work, "out"), root: filepath.Join(work, "root"),
		result: &Result{Names: names},
	}
	return a, nil
}

func (a *assembly) step(ctx context.Context, name string, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	err := fn(ctx)
	d := time.Since(start)
	a.result.Steps = append(a.result.Steps, Step{Name: name, Duration: d})
	if err != nil {
		a.in.Logger.Error("image step failed", "step", name, "error", err)
		return err
	}
	a.in.Logger.Info("image step done", "step", name, "seconds", fmt.Sprintf("%.2f", d.Seconds()))
	return nil
}

// uuid returns a stable UUID string for name.
func (a *assembly) uuid(name string) string { return gpt.DeriveGUID(a.seed, name).String() }

func (a *assembly) run(ctx context.Context) error {
	for _, d := range []string{a.stage, a.root} {
		if err := mkdirTree(d); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	var parts partitionImages
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"install packages", a.installRoot},
		{"kernel and initramfs", func(ctx context.Context) error { return a.prepareBoot(ctx, &parts) }},
		{"root filesystem", func(ctx context.Context) error { return a.buildRoot(ctx, &parts) }},
		{"dm-verity", func(ctx context.Context) error { return a.buildVerity(ctx, &parts) }},
		{"boot partition", func(ctx context.Context) error { return a.buildBootPartition(ctx, &parts) }},
		{"disk image", func(ctx context.Context) error { return a.buildDisk(ctx, &parts) }},
		{"update images", func(ctx context.Context) error { return a.writeUpdateImages(ctx, &parts) }},
		{"image format", a.writeFormat},
		{"sbom", a.writeSBOM},
		{"publish", a.publish},
	}
	for _, s := range steps {
		if err := a.step(ctx, s.name, s.fn); err != nil {
			return err
		}
	}
	return nil
}

// installRoot installs the closure and writes os-release and the inventory.
func (a *assembly) installRoot(ctx context.Context) error {
	if err := installRPMs(ctx, a.root, a.in.RPMs); err != nil {
		return err
	}
	// The users and groups of sysusers.d go into the factory /etc here,
	// once, instead of by systemd-sysusers on every boot.
	users, err := sysusers.Apply(ctx, a.root)
	if err != nil {
		return fmt.Errorf("%w: create system users and groups: %w", project.ErrInvalidInput, err)
	}
	a.in.Logger.Debug("system users and groups", "users", users.Users, "groups", users.Groups, "members", users.Members)
	m := a.in.Project.Manifest
	inv, err := readInventory(ctx, a.root, m.OS.Name+"-", m.OS.Vendor)
	if err != nil {
		return err
	}
	invJSON, err := MarshalInventory(inv)
	if err != nil {
		return err
	}
	if err := writeTreeFile(filepath.Join(a.stage, "application-inventory.json"), invJSON); err != nil {
		return fmt.Errorf("write application inventory: %w", err)
	}
	if err := a.collectSBOM(ctx); err != nil {
		return err
	}
	rel := OSRelease{
		Name: m.OS.PrettyName, ID: m.OS.Name, PrettyName: m.OS.PrettyName, Version: m.ReleaseVersion,
		VariantID: a.in.Variant.Name, BuildID: a.in.BuildID,
		HomeURL: m.OS.HomeURL, SupportURL: m.OS.SupportURL, BugReportURL: m.OS.BugReportURL,
	}
	return finishRoot(a.root, rel, invJSON, a.in.TrustedRoot)
}

// partitionImages are the intermediate files of one build.
type partitionImages struct {
	kernelVersion string
	bootTree      string // directory packed into BOOT
	root          string // root filesystem image
	rootFS        string // "erofs" or "ext4"
	hash          string // dm-verity hash image
	rootHash      string
	salt          string
	dataBlocks    uint64
	boot          string // BOOT ext4 image
}

// sparseCopy copies src into dst at offset, skipping all-zero blocks, so
// that the disk image stays sparse.
func sparseCopy(dst io.WriterAt, offset int64, src string, limit int64) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", src, err)
	}
	if st.Size() > limit {
		return fmt.Errorf("copy %s: %d bytes do not fit the %d-byte partition", src, st.Size(), limit)
	}
	buf := make([]byte, 1<<20)
	zero := make([]byte, 4096)
	var pos int64
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			for i := 0; i < n; i += 4096 {
				end := min(i+4096, n)
				chunk := buf[i:end]
				if slices.Equal(chunk, zero[:len(chunk)]) {
					continue
				}
				if _, werr := dst.WriteAt(chunk, offset+pos+int64(i)); werr != nil {
					return fmt.Errorf("write %s into disk image: %w", src, werr)
				}
			}
			pos += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", src, err)
		}
	}
}
