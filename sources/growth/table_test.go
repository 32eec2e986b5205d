package growth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/powercut"
)

var (
	typeData = gpt.MustParseGUID("626f7474-6c65-6474-6861-726d61726b73")
	dataGUID = gpt.MustParseGUID("5b94e8df-28b8-485c-9d19-362263b5944c")
)

const mib = 1 << 20

// image returns a disk image of size bytes with blocks of bs bytes: a
// 1 MiB partition at 1 MiB and DATA from 2 MiB to the last usable block,
// as the image build lays out the unified plan's last partition.
func image(t *testing.T, size int64, bs int) []byte {
	t.Helper()
	blocks := uint64(size) / uint64(bs)
	_, last := gpt.UsableRange(blocks, bs)
	per := uint64(mib / bs)
	tab := &gpt.Table{BlockSize: bs, DiskGUID: gpt.DeriveGUID([]byte("growth"), "disk"), Partitions: []gpt.Partition{
		{Number: 1, Type: gpt.DeriveGUID(nil, "type"), GUID: gpt.DeriveGUID([]byte("growth"), "1"), FirstLBA: per, LastLBA: 2*per - 1, Name: "FIRST"},
		{Number: 2, Type: typeData, GUID: dataGUID, FirstLBA: 2 * per, LastLBA: last},
	}}
	d := powercut.New(make([]byte, size))
	if err := gpt.Write(context.Background(), d, size, tab); err != nil {
		t.Fatal(err)
	}
	return d.Bytes()
}

// grow runs the table steps on d as the initramfs does.
func grow(ctx context.Context, d Disk, size int64, bs int) (TableFix, PartGrowth, error) {
	t, fix, err := FixTable(ctx, d, size, bs)
	if err != nil {
		return fix, PartGrowth{}, err
	}
	g, err := GrowEntry(ctx, d, size, t, dataGUID)
	return fix, g, err
}

func TestGrowSteps(t *testing.T) {
	ctx := context.Background()
	for _, bs := range []int{512, 4096} {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			small := image(t, 8*mib, bs)
			// Written to a disk of the same size: nothing to do.
			fix, g, err := grow(ctx, powercut.New(small), 8*mib, bs)
			if err != nil || fix.Changed() || g.Grown() {
				t.Fatalf("same-size disk: %+v, %+v, %v; want nothing done", fix, g, err)
			}
			// On a disk 24 MiB larger: the backup moves, DATA grows.
			const size = 32 * mib
			d := powercut.New(append(bytes.Clone(small), make([]byte, size-8*mib)...))
			if _, err := GrowEntry(ctx, d, size, mustRead(t, d, size, bs), dataGUID); err == nil || !strings.Contains(err.Error(), "fix the table first") {
				t.Errorf("GrowEntry before FixTable: %v, want a refusal", err)
			}
			fix, g, err = grow(ctx, d, size, bs)
			if err != nil {
				t.Fatal(err)
			}
			oldLast, newLast := uint64(8*mib/bs-1), uint64(size/bs-1)
			_, lastUsable := gpt.UsableRange(newLast+1, bs)
			if fix.Repaired != "" || fix.BackupFrom != oldLast || fix.BackupTo != newLast {
				t.Errorf("FixTable = %+v, want the backup moved from %d to %d", fix, oldLast, newLast)
			}
			if !g.Grown() || g.Partition.LastLBA != lastUsable || g.OldBytes() != 6*mib-int64(1+16384/bs)*int64(bs) || g.NewBytes() != 30*mib-int64(1+16384/bs)*int64(bs) {
				t.Errorf("GrowEntry = %+v (%d -> %d bytes), want DATA to end at %d", g, g.OldBytes(), g.NewBytes(), lastUsable)
			}
			tab := mustRead(t, d, size, bs)
			if p, _ := tab.ByGUID(dataGUID); tab.BackupMisplaced() || p.LastLBA != lastUsable {
				t.Errorf("table after growth: backup at %d, DATA ends at %d; want %d and %d", tab.BackupLBA, p.LastLBA, newLast, lastUsable)
			}
			// Again: nothing more, nothing written.
			writes := d.Writes()
			fix, g, err = grow(ctx, d, size, bs)
			if err != nil || fix.Changed() || g.Grown() || d.Writes() != writes {
				t.Errorf("second run: %+v, %+v, %v, %d writes; want nothing done", fix, g, err, d.Writes()-writes)
			}
		})
	}
}

func mustRead(t *testing.T, d *powercut.Disk, size int64, bs int) *gpt.Table {
	t.Helper()
	tab, err := gpt.ReadBlocks(context.Background(), d, size, bs)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestFixTableRepairs(t *testing.T) {
	ctx := context.Background()
	const bs, size = 512, 8 * mib
	for _, tt := range []struct {
		name     string
		damage   int64 // byte to flip
		repaired string
	}{
		{"damaged backup header", size - bs + 40, "backup"},
		{"damaged primary entries", 2*bs + 10, "primary"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := image(t, size, bs)
			b[tt.damage] ^= 0xff
			d := powercut.New(b)
			fix, g, err := grow(ctx, d, size, bs)
			if err != nil || fix.Repaired != tt.repaired || fix.Problem == nil || g.Grown() {
				t.Fatalf("grow = %+v, %+v, %v; want the %s copy repaired and nothing grown", fix, g, err, tt.repaired)
			}
			mustRead(t, d, size, bs)
		})
	}
}

func TestGrowEntryRefuses(t *testing.T) {
	ctx := context.Background()
	const bs, size = 512, 16 * mib
	d := powercut.New(image(t, 8*mib, bs))
	tab := mustRead(t, d, 8*mib, bs)
	// DATA followed by another partition: a disk laid out by someone else.
	tab.Partitions[1].LastLBA = 3*mib/bs - 1
	tab.Partitions = append(tab.Partitions, gpt.Partition{Number: 3, Type: typeData, GUID: gpt.DeriveGUID(nil, "3"), FirstLBA: 4 * mib / bs, LastLBA: 5*mib/bs - 1})
	big := powercut.New(append(bytes.Clone(d.Bytes()), make([]byte, size-8*mib)...))
	if err := gpt.Write(ctx, big, size, tab); err != nil {
		t.Fatal(err)
	}
	_, g, err := grow(ctx, big, size, bs)
	if !errors.Is(err, ErrNotLast) || !strings.Contains(err.Error(), "partition 3 starts at block 8192 after it") || g.Grown() {
		t.Errorf("grow with a partition after DATA: %+v, %v; want ErrNotLast naming partition 3", g, err)
	}
	if _, err := GrowEntry(ctx, big, size, mustRead(t, big, size, bs), gpt.DeriveGUID(nil, "absent")); err == nil || !strings.Contains(err.Error(), "no partition has that GUID") {
		t.Errorf("GrowEntry of an absent GUID: %v", err)
	}
}

// TestGrowCrashSafe replays a power cut after every write (and every
// reordering of writes between syncs) of a first boot's table steps: each
// state must hold a usable table in which DATA is either its old or its
// new size and the other partition is unchanged, and running the steps
// again on it must finish the job.
func TestGrowCrashSafe(t *testing.T) {
	ctx := context.Background()
	for _, bs := range []int{512, 4096} {
		for _, extra := range []int64{int64(3 * bs), 24 * mib} { // new backup over the old one, or apart from it
			t.Run(fmt.Sprintf("%d/+%d", bs, extra), func(t *testing.T) {
				small := image(t, 8*mib, bs)
				size := 8*mib + extra
				base := append(bytes.Clone(small), make([]byte, extra)...)
				d := powercut.New(base)
				if _, _, err := grow(ctx, d, size, bs); err != nil {
					t.Fatal(err)
				}
				oldTab := mustRead(t, powercut.New(small), 8*mib, bs)
				oldData, _ := oldTab.ByGUID(dataGUID)
				_, newLast := gpt.UsableRange(uint64(size)/uint64(bs), bs)
				states := d.States()
				for _, st := range states {
					tab, err := gpt.ReadBlocks(ctx, powercut.New(st.Bytes), size, bs)
					var one *gpt.OneCopyError
					if errors.As(err, &one) {
						tab, err = one.Table, nil
					}
					if err != nil {
						t.Errorf("%s: no usable partition table: %v", st.Name, err)
						continue
					}
					p, _ := tab.ByGUID(dataGUID)
					if p.FirstLBA != oldData.FirstLBA || p.LastLBA != oldData.LastLBA && p.LastLBA != newLast {
						t.Errorf("%s: DATA is %d..%d, want %d..%d or ..%d", st.Name, p.FirstLBA, p.LastLBA, oldData.FirstLBA, oldData.LastLBA, newLast)
					}
					if q, _ := tab.Partition(1); q != oldTab.Partitions[0] {
						t.Errorf("%s: partition 1 = %+v, want %+v", st.Name, q, oldTab.Partitions[0])
					}
					// The next boot finishes the job.
					again := powercut.New(st.Bytes)
					if _, _, err := grow(ctx, again, size, bs); err != nil {
						t.Errorf("%s: next boot: %v", st.Name, err)
						continue
					}
					final := mustRead(t, again, size, bs)
					if p, _ := final.ByGUID(dataGUID); final.BackupMisplaced() || p.LastLBA != newLast {
						t.Errorf("%s: after the next boot the backup is at %d of %d and DATA ends at %d, want %d", st.Name, final.BackupLBA, final.LastLBA, p.LastLBA, newLast)
					}
				}
				t.Logf("%d power-cut states, %d writes, %d syncs", len(states), d.Writes(), d.Syncs())
			})
		}
	}
}
