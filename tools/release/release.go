// Package release builds everything one release is into one directory,
// the same way every time, so that a CI pipeline and a person run the
// same thing: for each variant of Twoliter.toml's [release] list its
// image (update images and SBOMs included), the OVA of a VMware variant,
// its signed update repository and, when asked, its AMI; then a
// SHA256SUMS of every file.
//
// The steps themselves are buildctl's commands (Runner); this package
// orders them, copies their outputs into the release directory (hard
// links where the file system allows), and records each finished step in
// release.json there, so that a second run does only what is missing and
// a run that failed or was interrupted is resumed by running it again.
// It prints a summary table of what each step did.
package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/petrel-os/petrel/sources/outfile"
	"github.com/petrel-os/petrel/tools/sparse"
)

// Step names.
const (
	StepImage = "image"
	StepOVA   = "ova"
	StepRepo  = "repo"
	StepAMI   = "ami"
	StepSums  = "sums"
)

// File names in the release directory.
const (
	SumsFile  = "SHA256SUMS"
	StateFile = "release.json"
)

// Runner runs the steps of one variant; buildctl implements it with its
// commands. Each returns what it made: files, or a directory.
type Runner interface {
	// Image builds the variant and returns its image directory.
	Image(ctx context.Context, variant string) (dir string, err error)
	// OVA packs the variant's latest vmdk build and returns the OVA.
	OVA(ctx context.Context, variant string) (file string, err error)
	// Repo publishes the latest build and returns the repository.
	Repo(ctx context.Context, variant string) (dir string, err error)
	// AMI registers the latest build and returns the files it wrote.
	AMI(ctx context.Context, variant string) (files []string, err error)
}

// Plan is what one release holds.
type Plan struct {
	// Version and BuildID name the release: its directory is
	// <Root>/<Version>-<BuildID>.
	Version, BuildID, Arch string
	Root                   string
	Variants               []Variant
}

// Variant is one variant of the release. Every step runs unless Off
// gives the reason why not (the image step always runs).
type Variant struct {
	Name string
	Off  map[string]string
}

// Row is one line of the summary.
type Row struct {
	Variant, Step string
	// Status is "done", "done before" (skipped), "failed", "not run" or
	// "off" (not asked for).
	Status   string
	Duration time.Duration
	// Output is what the step made, relative to the release directory,
	// or why it did not run.
	Output string
}

// Summary describes one run.
type Summary struct {
	Dir     string
	Rows    []Row
	Files   int
	Elapsed time.Duration
}

// Failed reports whether a step failed.
func (s *Summary) Failed() bool {
	return slices.ContainsFunc(s.Rows, func(r Row) bool { return r.Status == "failed" })
}

// Table writes the summary as a table.
func (s *Summary) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIANT\tSTEP\tSTATUS\tTIME\tOUTPUT")
	for _, r := range s.Rows {
		d := "-"
		if r.Duration > 0 {
			d = fmt.Sprintf("%.1fs", r.Duration.Seconds())
		}
		v := r.Variant
		if v == "" {
			v = "(all)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v, r.Step, r.Status, d, r.Output)
	}
	tw.Flush()
	fmt.Fprintf(w, "release %s: %d files in %.1fs\n", s.Dir, s.Files, s.Elapsed.Seconds())
}

// state is release.json: the steps done, and the digests of the files
// hashed, so that a second run hashes only what changed.
type state struct {
	Version string                `json:"version"`
	BuildID string                `json:"build_id"`
	Done    map[string][]string   `json:"done"` // "variant/step" → outputs
	Digests map[string]fileDigest `json:"digests"`
}

type fileDigest struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
}

// Dir returns the release directory of a plan.
func (p Plan) Dir() string { return filepath.Join(p.Root, p.Version+"-"+p.BuildID) }

// Run runs the plan's steps that are not done yet and writes SHA256SUMS.
// A failed step stops its variant; the other variants go on, and the
// error names every failure.
func Run(ctx context.Context, plan Plan, r Runner, logger *slog.Logger) (*Summary, error) {
	start := time.Now()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dir := plan.Dir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create release directory: %w", err)
	}
	st, err := loadState(dir, plan)
	if err != nil {
		return nil, err
	}
	sum := &Summary{Dir: dir}
	var errs []error
	for _, v := range plan.Variants {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		failed := ""
		for _, s := range steps(v) {
			row := Row{Variant: v.Name, Step: s.name}
			key := v.Name + "/" + s.name
			switch {
			case s.off != "":
				row.Status, row.Output = "off", s.off
			case failed != "":
				row.Status, row.Output = "not run", failed+" failed"
			case st.done(dir, key):
				row.Status, row.Output = "done before", strings.Join(st.Done[key], " ")
			default:
				t := time.Now()
				outs, err := s.run(ctx, r, v.Name, dir, plan.Arch)
				row.Duration = time.Since(t)
				if err != nil {
					row.Status, row.Output, failed = "failed", firstLine(err), s.name
					errs = append(errs, fmt.Errorf("%s of %s: %w", s.name, v.Name, err))
					logger.Error("release step failed", "variant", v.Name, "step", s.name, "error", err)
					break
				}
				row.Status, row.Output = "done", strings.Join(outs, " ")
				st.Done[key] = outs
				if err := st.save(dir); err != nil {
					return sum, err
				}
				logger.Info("release step done", "variant", v.Name, "step", s.name, "seconds", fmt.Sprintf("%.1f", row.Duration.Seconds()))
			}
			sum.Rows = append(sum.Rows, row)
		}
	}
	t := time.Now()
	n, err := st.writeSums(dir)
	row := Row{Step: StepSums, Status: "done", Duration: time.Since(t), Output: fmt.Sprintf("%s (%d files)", SumsFile, n)}
	if err != nil {
		row.Status, row.Output = "failed", firstLine(err)
		errs = append(errs, err)
	}
	sum.Rows = append(sum.Rows, row)
	sum.Files = n
	if err := st.save(dir); err != nil {
		errs = append(errs, err)
	}
	sum.Elapsed = time.Since(start)
	return sum, errors.Join(errs...)
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// step is one step of a variant.
type step struct {
	name string
	off  string // why it does not run, if it does not
	run  func(ctx context.Context, r Runner, variant, dir, arch string) ([]string, error)
}

func steps(v Variant) []step {
	imgDir := func(arch, variant string) string { return filepath.Join("images", arch+"-"+variant) }
	return []step{
		{name: StepImage, run: func(ctx context.Context, r Runner, variant, dir, arch string) ([]string, error) {
			src, err := r.Image(ctx, variant)
			if err != nil {
				return nil, err
			}
			rel := imgDir(arch, variant)
			return []string{rel + "/"}, copyTree(src, filepath.Join(dir, rel), func(name string) bool {
				return !strings.HasSuffix(name, ".ova") && !strings.HasSuffix(name, "-amis.json") && !strings.HasSuffix(name, "-ssm-parameters.json")
			})
		}},
		{name: StepOVA, off: v.Off[StepOVA], run: func(ctx context.Context, r Runner, variant, dir, arch string) ([]string, error) {
			f, err := r.OVA(ctx, variant)
			if err != nil {
				return nil, err
			}
			rel := filepath.Join(imgDir(arch, variant), filepath.Base(f))
			return []string{rel}, copyFile(f, filepath.Join(dir, rel))
		}},
		{name: StepRepo, off: v.Off[StepRepo], run: func(ctx context.Context, r Runner, variant, dir, arch string) ([]string, error) {
			src, err := r.Repo(ctx, variant)
			if err != nil {
				return nil, err
			}
			rel := filepath.Join("repos", variant, arch)
			// The repository holds every release so far: the copy replaces
			// an older one.
			if err := os.RemoveAll(filepath.Join(dir, rel)); err != nil {
				return nil, fmt.Errorf("remove the older copy of the repository: %w", err)
			}
			return []string{rel + "/"}, copyTree(src, filepath.Join(dir, rel), nil)
		}},
		{name: StepAMI, off: v.Off[StepAMI], run: func(ctx context.Context, r Runner, variant, dir, arch string) ([]string, error) {
			files, err := r.AMI(ctx, variant)
			if err != nil {
				return nil, err
			}
			var outs []string
			for _, f := range files {
				rel := filepath.Join(imgDir(arch, variant), filepath.Base(f))
				if err := copyFile(f, filepath.Join(dir, rel)); err != nil {
					return nil, err
				}
				outs = append(outs, rel)
			}
			return outs, nil
		}},
	}
}

// copyFile copies src to dst, as a hard link where possible: outputs are
// never changed in place, a new build replaces them.
func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return outfile.Copy(src, dst, outfile.Options{HardLink: true})
}

// copyTree copies the regular files under src whose names keep accepts
// (nil: all) to dst.
func copyTree(src, dst string, keep func(name string) bool) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.Type().IsRegular() || (keep != nil && !keep(e.Name())) {
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		return copyFile(p, filepath.Join(dst, rel))
	})
}

func loadState(dir string, plan Plan) (*state, error) {
	st := &state{Version: plan.Version, BuildID: plan.BuildID, Done: map[string][]string{}, Digests: map[string]fileDigest{}}
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read release state: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("read release state %s: %w (remove it to start the release again)", filepath.Join(dir, StateFile), err)
	}
	if st.Done == nil {
		st.Done = map[string][]string{}
	}
	if st.Digests == nil {
		st.Digests = map[string]fileDigest{}
	}
	return st, nil
}

// done reports whether step key is recorded and its outputs still exist.
func (st *state) done(dir, key string) bool {
	outs, ok := st.Done[key]
	if !ok {
		return false
	}
	for _, o := range outs {
		if _, err := os.Stat(filepath.Join(dir, o)); err != nil {
			return false
		}
	}
	return true
}

func (st *state) save(dir string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode release state: %w", err)
	}
	if err := outfile.WriteFile(filepath.Join(dir, StateFile), append(data, '\n'), outfile.Options{}); err != nil {
		return fmt.Errorf("write release state: %w", err)
	}
	return nil
}

// writeSums writes SHA256SUMS (sha256sum's format, sorted by path) of
// every file of the release but itself and the state, hashing only files
// whose size or time changed since the last run.
func (st *state) writeSums(dir string) (int, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.Type().IsRegular() && rel != SumsFile && rel != StateFile && !strings.HasPrefix(e.Name(), outfile.TempPrefix) {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list release files: %w", err)
	}
	slices.Sort(files)
	sums := make([]fileDigest, len(files))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, f := range files {
		g.Go(func() error {
			p := filepath.Join(dir, f)
			fi, err := os.Stat(p)
			if err != nil {
				return fmt.Errorf("hash %s: %w", f, err)
			}
			d, ok := st.Digests[f]
			if !ok || d.Size != fi.Size() || d.ModTime != fi.ModTime().UnixNano() {
				sum, size, err := sparse.SHA256(p)
				if err != nil {
					return err
				}
				d = fileDigest{Size: size, ModTime: fi.ModTime().UnixNano(), SHA256: sum}
			}
			sums[i] = d
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	var b strings.Builder
	digests := map[string]fileDigest{}
	for i, f := range files {
		digests[f] = sums[i]
		fmt.Fprintf(&b, "%s  %s\n", sums[i].SHA256, f)
	}
	st.Digests = digests
	if err := outfile.WriteFile(filepath.Join(dir, SumsFile), []byte(b.String()), outfile.Options{}); err != nil {
		return 0, fmt.Errorf("write %s: %w", SumsFile, err)
	}
	return len(files), nil
}
