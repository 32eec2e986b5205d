package updater

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/bank"
	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/cli"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/partflip"
)

// plan is what a refresh found for the running host.
type plan struct {
	host       host
	repo       *Repo
	manifest   *manifest.Manifest
	applicable []manifest.Update
	chosen     *manifest.Update
}

// plan refreshes the metadata with the host's settings and chooses the
// update: version when given (any published update of the host's variant
// and arch, as upstream's --image), else by Choose.
func (a *agent) plan(ctx context.Context, version string) (*plan, error) {
	h, err := a.host()
	if err != nil {
		return nil, err
	}
	s, err := a.settings(ctx)
	if err != nil {
		return nil, err
	}
	c, err := a.client(s, h)
	if err != nil {
		return nil, err
	}
	r, err := c.Refresh(ctx)
	if err != nil {
		return nil, fmt.Errorf("refresh update metadata: %w", err)
	}
	m, err := r.Manifest(ctx)
	if err != nil {
		return nil, err
	}
	pol := Policy{VersionLock: s.VersionLock, IgnoreWaves: s.IgnoreWaves, Seed: uint32(*s.Seed), Now: time.Now()}
	p := &plan{host: h, repo: r, manifest: m, applicable: Applicable(m, h.Host, pol)}
	if version != "" {
		v, err := manifest.ParseVersion(version)
		if err != nil {
			return nil, cli.Usagef("--version: %w", err)
		}
		p.chosen = m.Find(h.Variant, h.Arch, v)
		if p.chosen == nil {
			return nil, cli.WithExitCode(ExitNoUpdate, fmt.Errorf("%w: %s %s %s", manifest.ErrNoUpdate, h.Variant, h.Arch, v))
		}
		return p, nil
	}
	if p.chosen, err = Choose(m, h.Host, pol); err != nil {
		return nil, fmt.Errorf("choose update: %w", err)
	}
	return p, nil
}

func (p *plan) checkResult() CheckResult {
	res := CheckResult{OS: p.host.image(), AvailableUpdates: []manifest.Version{}}
	for _, u := range p.applicable {
		res.AvailableUpdates = append(res.AvailableUpdates, u.Version)
	}
	if p.chosen != nil {
		res.ChosenUpdate = &Image{Variant: p.chosen.Variant, Arch: p.chosen.Arch, Version: p.chosen.Version}
	}
	return res
}

// stepf calls the test seam before a write step.
func (a *agent) stepf(format string, args ...any) {
	if a.step != nil {
		a.step(fmt.Sprintf(format, args...))
	}
}

// change applies a boot state transition and logs it.
func (a *agent) change(ctx context.Context, loc *partflip.Location, op string, fn func(bootstate.State, bootstate.Bank) (bootstate.State, error)) error {
	a.stepf("%s", op)
	before, after, err := loc.Change(ctx, op, fn)
	if err != nil {
		return err
	}
	a.log.Info("boot state changed", "op", op, "booted", loc.Booted.String(), slog.Any("before", before), slog.Any("after", after))
	return nil
}

// updateImage writes the chosen update into the inactive bank, in the
// order that keeps the host bootable at every instant (docs/updates.md):
// nothing on the disk changes until the update, its images and its
// migrations are known; then the inactive bank's boot state is cleared
// and its record removed; the images are streamed in, synced and read
// back; what the next boot's migrator needs is saved, then the record of
// what the bank holds; last, the bank is marked valid (tries 1). A crash
// anywhere leaves the booted bank the one that boots; a crash before the
// last step leaves the inactive bank unbootable. The flip is apply's.
func (a *agent) updateImage(ctx context.Context, loc *partflip.Location, version string) (*Staged, error) {
	p, err := a.plan(ctx, version)
	if err != nil {
		return nil, err
	}
	u, running := p.chosen, p.host.Version
	if u == nil {
		return nil, cli.WithExitCode(ExitNoUpdate, fmt.Errorf("no update for %s %s %s", p.host.Variant, p.host.Arch, running))
	}
	if u.Version.Compare(running) == 0 {
		return nil, cli.WithExitCode(ExitNoUpdate, fmt.Errorf("%s %s %s is running already", u.Variant, u.Arch, u.Version))
	}
	// Everything that can be refused without touching the disk first.
	if _, err := p.manifest.Migrations.Chain(running, u.Version); err != nil {
		return nil, fmt.Errorf("update %s to %s: %w", running, u.Version, err)
	}
	rootHash, err := hex.DecodeString(u.Images.RootHash)
	if err != nil || len(rootHash) != 32 {
		return nil, fmt.Errorf("update %s: manifest.json gives no images.root_hash to check its root against (published by an older buildctl repo?)", u.Version)
	}
	names := map[bank.Part]string{bank.Root: u.Images.Root, bank.Boot: u.Images.Boot, bank.Hash: u.Images.Hash}
	for _, part := range bank.Parts() {
		if _, err := p.repo.Target(names[part]); err != nil {
			return nil, fmt.Errorf("update %s: %s image: %w", u.Version, part, err)
		}
	}
	inactive := loc.Booted.Other()
	w, err := bank.Open(ctx, loc.Disk, inactive)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	a.log.Info("writing update", "version", u.Version, "running", running, "bank", inactive.String(), "disk", loc.Disk)
	began := time.Now()

	if err := a.change(ctx, loc, "clear-inactive", bootstate.ClearInactive); err != nil {
		return nil, err
	}
	a.stepf("remove %s", StagedFile)
	if err := removeStaged(a.o.stateDir); err != nil {
		return nil, err
	}
	for _, part := range bank.Parts() {
		a.stepf("write %s", part)
		start := time.Now()
		n, err := w.Write(ctx, part, func(dst io.Writer) error {
			return p.repo.Download(ctx, names[part], a.midway(part, dst))
		})
		if err != nil {
			return nil, err
		}
		a.log.Info("wrote image", "part", part.String(), "target", names[part], "bytes", n, "seconds", time.Since(start).Seconds())
		// The zstd decoder's buffers of this image are garbage now: free
		// them before the next image's decoder allocates its own, so that
		// peak memory is one decoder's, not the sum of three (40 MiB
		// instead of 31 for the metal-dev images).
		debug.FreeOSMemory()
	}
	a.stepf("sync")
	start := time.Now()
	if err := w.Sync(); err != nil {
		return nil, err
	}
	synced := time.Now()
	a.stepf("check")
	if err := w.Check(ctx, rootHash); err != nil {
		return nil, err
	}
	a.log.Info("checked bank", "bank", inactive.String(), "root_hash", u.Images.RootHash,
		"sync_seconds", synced.Sub(start).Seconds(), "check_seconds", time.Since(synced).Seconds())
	a.stepf("save migrations")
	if _, err := p.repo.Prefetch(ctx, running, u.Version, MigratorTargetsDir(a.o.stateDir)); err != nil {
		return nil, err
	}
	a.stepf("save metadata")
	if err := p.repo.SaveMetadata(MigratorMetadataDir(a.o.stateDir)); err != nil {
		return nil, err
	}
	staged := Staged{Bank: inactive, Image: Image{Variant: u.Variant, Arch: u.Arch, Version: u.Version},
		RootHash: u.Images.RootHash, Written: time.Now().UTC()}
	a.stepf("write %s", StagedFile)
	if err := writeStaged(a.o.stateDir, staged); err != nil {
		return nil, err
	}
	if err := a.change(ctx, loc, "mark-inactive-valid", bootstate.MarkInactiveValid); err != nil {
		return nil, err
	}
	// The figures of docs/performance.md: the whole write against the
	// time a plain copy of the same bytes into the partitions costs (the
	// device's share), and the process's peak memory.
	a.log.Info("update written", "version", u.Version, "bank", inactive.String(),
		"seconds", time.Since(began).Seconds(), "device_seconds", w.DeviceTime().Seconds(), "peak_rss_kib", peakRSS())
	return &staged, nil
}

// midway calls the test seam once a part has streamed its first MiB, so
// that tests stop the agent in the middle of a write.
func (a *agent) midway(part bank.Part, w io.Writer) io.Writer {
	if a.step == nil {
		return w
	}
	return &stepWriter{w: w, fn: func() { a.stepf("writing %s", part) }}
}

type stepWriter struct {
	w    io.Writer
	n    int64
	fn   func()
	done bool
}

func (s *stepWriter) Write(b []byte) (int, error) {
	s.n += int64(len(b))
	if !s.done && s.n >= 1<<20 {
		s.done = true
		s.fn()
	}
	return s.w.Write(b)
}

// apply makes the next boot try the inactive bank (one sector write),
// then reboots through the API with reboot.
func (a *agent) apply(ctx context.Context, loc *partflip.Location, reboot bool) error {
	if err := a.change(ctx, loc, "upgrade-to-inactive", bootstate.UpgradeToInactive); err != nil {
		return err
	}
	if !reboot {
		return nil
	}
	c := apiclient.New(a.o.socket)
	defer c.Close()
	if err := c.Reboot(ctx); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	return nil
}

// peakRSS returns the process's peak resident memory in KiB (VmHWM of
// /proc/self/status, which counts this program only, unlike getrusage,
// whose figure includes the memory of the process that forked it), or
// -1 when it cannot be read.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return -1
			}
			return kib
		}
	}
	return -1
}
