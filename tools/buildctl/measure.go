package buildctl

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/imagecodec"
	"github.com/petrel-os/petrel/tools/fsimage"
	"github.com/petrel-os/petrel/tools/initrd"
	"github.com/petrel-os/petrel/tools/qemu"
)

// kernelStart matches the kernel's first console line.
var kernelStart = regexp.MustCompile(`Linux version \d`)

// bootFigures are the measured times of one boot, from QEMU's start.
type bootFigures struct {
	kernel, end time.Duration
}

// measureBoots boots img as built and then, as the floor, a copy whose bank
// A initramfs is replaced by one that powers off at once: same firmware,
// GRUB and kernel, no userspace. It does so runs times, alternating, so
// that both see the same machine load, and prints every run, the medians
// and the median of the runs' ratios (each run pairs an image boot with the
// floor boot right after it), plus the root filesystem and update-image sizes found
// beside img.
func (a *app) measureBoots(ctx context.Context, opts qemu.Options, runs int, timeout time.Duration) error {
	opts.Console = nil
	floorImg, cleanup, err := floorImage(ctx, opts.Image)
	if err != nil {
		return err
	}
	defer cleanup()
	fopts := opts
	fopts.Image, fopts.ConsoleLog, fopts.ConfigDrive = floorImg, opts.ConsoleLog+".floor", ""
	accel := "software emulation (TCG)"
	if qemu.KVMUsable() {
		accel = "KVM"
	}
	w := a.stdout
	fmt.Fprintf(w, "boot figures (%s firmware, %s), seconds from QEMU start, %d runs each:\n", opts.Firmware, accel, runs)
	var devs, floors []bootFigures
	var ratios []float64
	for i := 1; i <= runs; i++ {
		dev, err := timeBoot(ctx, opts, true, timeout)
		if err != nil {
			return fmt.Errorf("measure host-ready boot %d: %w", i, err)
		}
		floor, err := timeBoot(ctx, fopts, false, timeout)
		if err != nil {
			return fmt.Errorf("measure floor boot %d: %w", i, err)
		}
		ratio := dev.end.Seconds() / floor.end.Seconds()
		fmt.Fprintf(w, "  run %d: image kernel start %5.1f, host ready %5.1f; floor kernel start %5.1f, power off %5.1f; ratio %.2f\n",
			i, dev.kernel.Seconds(), dev.end.Seconds(), floor.kernel.Seconds(), floor.end.Seconds(), ratio)
		devs, floors, ratios = append(devs, dev), append(floors, floor), append(ratios, ratio)
	}
	dev, floor := medianFigures(devs), medianFigures(floors)
	fmt.Fprintf(w, "  image:  kernel start %6.1f   host ready %6.1f   (medians)\n", dev.kernel.Seconds(), dev.end.Seconds())
	fmt.Fprintf(w, "  floor:  kernel start %6.1f   power off  %6.1f   (medians; same firmware, GRUB and kernel; initramfs powers off at once)\n",
		floor.kernel.Seconds(), floor.end.Seconds())
	slices.Sort(ratios)
	fmt.Fprintf(w, "  host ready / floor = %.2f (median of the runs' ratios; target <= 2)\n", ratios[len(ratios)/2])
	a.printImageSizes(ctx, filepath.Dir(opts.Image))
	return nil
}

// medianFigures returns the median of each figure on its own (the upper
// median for an even count).
func medianFigures(runs []bootFigures) bootFigures {
	median := func(get func(bootFigures) time.Duration) time.Duration {
		v := make([]time.Duration, len(runs))
		for i, r := range runs {
			v[i] = get(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return bootFigures{
		kernel: median(func(b bootFigures) time.Duration { return b.kernel }),
		end:    median(func(b bootFigures) time.Duration { return b.end }),
	}
}

// timeBoot boots opts; it ends at host ready when untilReady (failing as
// soon as the console shows that ready cannot come), or when QEMU exits.
func timeBoot(ctx context.Context, opts qemu.Options, untilReady bool, timeout time.Duration) (bootFigures, error) {
	start := time.Now()
	vm, err := qemu.Start(ctx, opts)
	if err != nil {
		return bootFigures{}, err
	}
	defer vm.Stop()
	k, idx, err := vm.WaitFor(ctx, kernelStart, 0, timeout)
	if err != nil {
		return bootFigures{}, err
	}
	f := bootFigures{kernel: k.At}
	if !untilReady {
		if err := vm.Wait(ctx, timeout); err != nil {
			return bootFigures{}, err
		}
		f.end = time.Since(start)
		return f, nil
	}
	l, _, err := vm.WaitReady(ctx, idx, timeout, qemu.Policy{})
	if err != nil {
		return bootFigures{}, err
	}
	f.end = l.At
	return f, nil
}

// floorImage copies img and replaces bank A's initramfs with the poweroff
// one.
func floorImage(ctx context.Context, img string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "petrel-floor-")
	if err != nil {
		return "", nil, fmt.Errorf("create floor directory: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	out := filepath.Join(dir, "floor.img")
	if b, err := exec.CommandContext(ctx, "cp", "--sparse=always", img, out).CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("copy image for the floor boot: %w: %s", err, b)
	}
	t, err := gpt.ReadFile(ctx, out)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	var bootA *gpt.Partition
	for i := range t.Partitions {
		if p := &t.Partitions[i]; p.Type == disklayout.TypeBoot && (bootA == nil || p.Number < bootA.Number) {
			bootA = p
		}
	}
	if bootA == nil {
		cleanup()
		return "", nil, fmt.Errorf("find BOOT-A in %s: no partition of type %s", img, disklayout.TypeBoot)
	}
	var rd bytes.Buffer
	if err := initrd.Poweroff(&rd); err != nil {
		cleanup()
		return "", nil, err
	}
	if err := fsimage.ReplaceFile(ctx, out, int64(bootA.FirstLBA)*gpt.SectorSize, "/initrd.img", rd.Bytes()); err != nil {
		cleanup()
		return "", nil, err
	}
	return out, cleanup, nil
}

// printImageSizes prints the root filesystem size and the update images'
// sizes found in dir (a build output directory).
func (a *app) printImageSizes(ctx context.Context, dir string) {
	roots, _ := filepath.Glob(filepath.Join(dir, "*-root.*"+imagecodec.Ext))
	for _, r := range roots {
		if filepath.Ext(trimZst(r)) == ".verity" {
			continue
		}
		f, err := os.Open(r)
		if err != nil {
			continue
		}
		n, err := imagecodec.Decompress(ctx, io.Discard, f, 0)
		f.Close()
		if err == nil {
			fmt.Fprintf(a.stdout, "  root filesystem: %.1f MiB (target < 150 MiB)\n", float64(n)/(1<<20))
		}
	}
	updates, _ := filepath.Glob(filepath.Join(dir, "*"+imagecodec.Ext))
	var total int64
	for _, u := range updates {
		if st, err := os.Stat(u); err == nil {
			fmt.Fprintf(a.stdout, "  update image %s: %.1f MiB\n", filepath.Base(u), float64(st.Size())/(1<<20))
			total += st.Size()
		}
	}
	if len(updates) > 0 {
		fmt.Fprintf(a.stdout, "  update images, compressed, in all: %.1f MiB\n", float64(total)/(1<<20))
	}
}

func trimZst(p string) string { return p[:len(p)-len(imagecodec.Ext)] }
