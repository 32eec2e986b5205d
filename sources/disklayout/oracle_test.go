package disklayout

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/testkit"
)

type sfdiskDump struct {
	PartitionTable struct {
		ID         string `json:"id"`
		FirstLBA   uint64 `json:"firstlba"`
		LastLBA    uint64 `json:"lastlba"`
		Partitions []struct {
			Node  string `json:"node"`
			Start uint64 `json:"start"`
			Size  uint64 `json:"size"`
			Type  string `json:"type"`
			UUID  string `json:"uuid"`
			Name  string `json:"name"`
			Attrs string `json:"attrs"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// TestGPTWithRealTools writes every plan's tables into sparse files and
// checks them with sgdisk -v and sfdisk --json.
func TestGPTWithRealTools(t *testing.T) {
	t.Parallel()
	testkit.Tools(t, "sgdisk", "sfdisk")
	seed := []byte("petrel-test-seed")
	for _, g := range ValidOSImageSizesGiB() {
		for _, unified := range []bool{false, true} {
			for _, inPlace := range []bool{true, false} {
				opts := Options{OSImageSizeGiB: g, DataImageSizeGiB: 1, Unified: unified, InPlaceUpdates: inPlace, LabelPrefix: "PETREL"}
				t.Run(fmt.Sprintf("%dGiB/unified=%v/in-place=%v", g, unified, inPlace), func(t *testing.T) {
					t.Parallel()
					l, err := Plan(opts)
					if err != nil {
						t.Fatal(err)
					}
					for _, d := range []*Disk{&l.OSDisk, l.DataDisk} {
						if d != nil {
							checkDiskWithTools(t, d, seed)
						}
					}
				})
			}
		}
	}
}

func checkDiskWithTools(t *testing.T, d *Disk, seed []byte) {
	t.Helper()
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), d.Name+".img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, d.SizeBytes); err != nil {
		t.Fatal(err)
	}
	table := d.GPT(seed)
	if err := gpt.WriteFile(ctx, img, table); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if out := testkit.Run(t, "sgdisk", "-v", img); !strings.Contains(out, "No problems found") || strings.Contains(out, "Warning") {
		t.Errorf("sgdisk -v %s:\n%s", d.Name, out)
	}
	out := testkit.Run(t, "sfdisk", "--json", img)
	var dump sfdiskDump
	if err := json.Unmarshal([]byte(out), &dump); err != nil {
		t.Fatalf("parse sfdisk --json output: %v\n%s", err, out)
	}
	pt := dump.PartitionTable
	if !strings.EqualFold(pt.ID, table.DiskGUID.String()) {
		t.Errorf("disk GUID = %s, want %s", pt.ID, table.DiskGUID)
	}
	if len(pt.Partitions) != len(d.Partitions) {
		t.Fatalf("sfdisk sees %d partitions, plan has %d", len(pt.Partitions), len(d.Partitions))
	}
	for i, p := range d.Partitions {
		got := pt.Partitions[i]
		wantNode := fmt.Sprintf("%s%d", img, p.Number)
		wantAttrs := ""
		if p.Attributes != 0 {
			var bits []string
			for b := 48; b < 64; b++ {
				if p.Attributes&(1<<b) != 0 {
					bits = append(bits, fmt.Sprint(b))
				}
			}
			wantAttrs = "GUID:" + strings.Join(bits, ",")
		}
		wantGUID := table.Partitions[i].GUID
		if got.Node != wantNode || got.Start != uint64(p.OffsetMiB)*2048 || got.Size != uint64(p.SizeMiB)*2048 ||
			!strings.EqualFold(got.Type, p.Type.String()) || got.Name != p.Label || got.Attrs != wantAttrs ||
			!strings.EqualFold(got.UUID, wantGUID.String()) {
			t.Errorf("%s: sfdisk shows %+v, want node %s start %d size %d type %s name %q attrs %q uuid %s",
				p.Key, got, wantNode, p.OffsetMiB*2048, p.SizeMiB*2048, p.Type, p.Label, wantAttrs, wantGUID)
		}
	}
	back, err := gpt.ReadFile(ctx, img)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	if back.DiskGUID != table.DiskGUID || fmt.Sprint(back.Partitions) != fmt.Sprint(table.Partitions) || back.BackupMisplaced() {
		t.Errorf("ReadFile = %+v, want %+v with the backup at the end", back, table)
	}
}
