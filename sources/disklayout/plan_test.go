package disklayout

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// refRow is one row of the reference table (bottlerocket-build.md §4.2):
// offset/size in MiB for the three columns; zero means "no such partition".
type refRow struct {
	key                   string
	g2, g4, g2noInPlace   [2]int64
	unifiedOnly, dataDisk bool
}

var refTable = []refRow{
	{key: KeyBIOS, g2: [2]int64{1, 4}, g4: [2]int64{1, 4}, g2noInPlace: [2]int64{1, 4}},
	{key: KeyEFIA, g2: [2]int64{5, 5}, g4: [2]int64{5, 5}, g2noInPlace: [2]int64{5, 10}},
	{key: KeyBootA, g2: [2]int64{10, 40}, g4: [2]int64{10, 80}, g2noInPlace: [2]int64{15, 80}},
	{key: KeyRootA, g2: [2]int64{50, 920}, g4: [2]int64{90, 1840}, g2noInPlace: [2]int64{95, 1840}},
	{key: KeyHashA, g2: [2]int64{970, 10}, g4: [2]int64{1930, 20}, g2noInPlace: [2]int64{1935, 20}},
	{key: KeyReservedA, g2: [2]int64{980, 25}, g4: [2]int64{1950, 55}, g2noInPlace: [2]int64{1955, 50}},
	{key: KeyEFIB, g2: [2]int64{1005, 5}, g4: [2]int64{2005, 5}},
	{key: KeyBootB, g2: [2]int64{1010, 40}, g4: [2]int64{2010, 80}},
	{key: KeyRootB, g2: [2]int64{1050, 920}, g4: [2]int64{2090, 1840}},
	{key: KeyHashB, g2: [2]int64{1970, 10}, g4: [2]int64{3930, 20}},
	{key: KeyReservedB, g2: [2]int64{1980, 25}, g4: [2]int64{3950, 55}},
	{key: KeyPrivate, g2: [2]int64{2005, 41}, g4: [2]int64{4005, 89}, g2noInPlace: [2]int64{2005, 41}},
	{key: KeyDataA, g2: [2]int64{2046, 1}, g4: [2]int64{4094, 1}, g2noInPlace: [2]int64{2046, 1}},
	{key: KeyDataA, unifiedOnly: true, g2: [2]int64{2046, 1024}, g4: [2]int64{4094, 1024}, g2noInPlace: [2]int64{2046, 1024}}, // last column: same formula, not in the reference table
	{key: KeyDataB, dataDisk: true, g2: [2]int64{1, 1022}, g4: [2]int64{1, 1022}, g2noInPlace: [2]int64{1, 1022}},
}

func TestPlanMatchesReferenceTable(t *testing.T) {
	t.Parallel()
	cols := []struct {
		name    string
		g       int
		inPlace bool
		pick    func(refRow) [2]int64
	}{
		{"2GiB", 2, true, func(r refRow) [2]int64 { return r.g2 }},
		{"4GiB", 4, true, func(r refRow) [2]int64 { return r.g4 }},
		{"2GiB-no-in-place", 2, false, func(r refRow) [2]int64 { return r.g2noInPlace }},
	}
	for _, col := range cols {
		for _, row := range refTable {
			name := fmt.Sprintf("%s/%s", col.name, row.key)
			if row.unifiedOnly {
				name += "-unified"
			}
			if row.dataDisk {
				name += "-datadisk"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				want := col.pick(row)
				l, err := Plan(Options{OSImageSizeGiB: col.g, DataImageSizeGiB: 1, Unified: row.unifiedOnly, InPlaceUpdates: col.inPlace, LabelPrefix: "PETREL"})
				if err != nil {
					t.Fatalf("Plan: %v", err)
				}
				var p Partition
				var ok bool
				if row.dataDisk {
					p, ok = l.DataDisk.Partition(row.key)
				} else {
					p, ok = l.OSDisk.Partition(row.key)
				}
				if want == [2]int64{} {
					if ok {
						t.Fatalf("Partition(%q) = %+v, want none", row.key, p)
					}
					return
				}
				if !ok {
					t.Fatalf("Partition(%q) missing", row.key)
				}
				if got := [2]int64{p.OffsetMiB, p.SizeMiB}; got != want {
					t.Errorf("Partition(%q) offset/size = %v MiB, want %v", row.key, got, want)
				}
			})
		}
	}
}

func TestPlanNumbering(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		inPlace bool
		want    string
	}{
		{"in-place", true, "BIOS EFI-A BOOT-A ROOT-A HASH-A RESERVED-A EFI-B BOOT-B ROOT-B HASH-B RESERVED-B PRIVATE DATA-A"},
		{"no-in-place", false, "BIOS EFI-A BOOT-A ROOT-A HASH-A RESERVED-A PRIVATE DATA-A"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := Plan(Options{OSImageSizeGiB: 2, DataImageSizeGiB: 1, InPlaceUpdates: tt.inPlace, LabelPrefix: "PETREL"})
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for i, p := range l.OSDisk.Partitions {
				if p.Number != i+1 {
					t.Errorf("%s has number %d, want %d", p.Key, p.Number, i+1)
				}
				keys = append(keys, p.Key)
			}
			if got := strings.Join(keys, " "); got != tt.want {
				t.Errorf("order = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPlanLabelsGUIDsAttributes(t *testing.T) {
	t.Parallel()
	for _, unified := range []bool{false, true} {
		t.Run(fmt.Sprintf("unified=%v", unified), func(t *testing.T) {
			t.Parallel()
			l, err := Plan(Options{OSImageSizeGiB: 2, DataImageSizeGiB: 3, Unified: unified, InPlaceUpdates: true, LabelPrefix: "PETREL"})
			if err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct {
				key, label string
				typ        GUID
			}{
				{KeyBIOS, "BIOS-BOOT", TypeBIOSBoot},
				{KeyEFIA, "EFI-SYSTEM", TypeEFISystem},
				{KeyEFIB, "EFI-BACKUP", TypeEFIBackup},
				{KeyBootA, "PETREL-BOOT-A", TypeBoot},
				{KeyRootB, "PETREL-ROOT-B", TypeRoot},
				{KeyHashA, "PETREL-HASH-A", TypeHash},
				{KeyReservedB, "PETREL-RESERVED-B", TypeReserved},
				{KeyPrivate, "PETREL-PRIVATE", TypePrivate},
				{KeyDataA, "", TypeData},
			} {
				p, ok := l.Partition(tt.key)
				if !ok || p.Label != tt.label || p.Type != tt.typ {
					t.Errorf("Partition(%q) = %q %v (found %v), want %q %v", tt.key, p.Label, p.Type, ok, tt.label, tt.typ)
				}
			}
			bootA, _ := l.Partition(KeyBootA)
			if bootA.Attributes != 1<<48|1<<56 {
				t.Errorf("BOOT-A attributes = %#x, want bits 48 and 56", bootA.Attributes)
			}
			bootB, _ := l.Partition(KeyBootB)
			if bootB.Attributes != 0 {
				t.Errorf("BOOT-B attributes = %#x, want 0", bootB.Attributes)
			}
			dataA, _ := l.Partition(KeyDataA)
			if unified {
				if l.DataDisk != nil || dataA.GUID != DataPreferredGUID || dataA.SizeMiB != 3072 || l.OSDisk.SizeBytes != 5*GiB {
					t.Errorf("unified: data disk %v, DATA-A %v %d MiB, disk %d B; want none, preferred, 3072, 5 GiB", l.DataDisk, dataA.GUID, dataA.SizeMiB, l.OSDisk.SizeBytes)
				}
				return
			}
			dataB, ok := l.Partition(KeyDataB)
			if !ok || dataA.GUID != DataFallbackGUID || dataB.GUID != DataPreferredGUID || dataB.SizeMiB != 3070 || l.DataDisk.SizeBytes != 3*GiB || l.OSDisk.SizeBytes != 2*GiB {
				t.Errorf("split: DATA-A %v, DATA-B %v %d MiB, disks %d/%d B", dataA.GUID, dataB.GUID, dataB.SizeMiB, l.OSDisk.SizeBytes, l.DataDisk.SizeBytes)
			}
		})
	}
}

func TestPlanInvalidOptions(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		opts  Options
		wants []string
	}{
		{"size 3", Options{OSImageSizeGiB: 3, DataImageSizeGiB: 1, LabelPrefix: "PETREL"}, []string{"OSImageSizeGiB: 3", "[2 4]"}},
		{"all bad", Options{OSImageSizeGiB: 0, DataImageSizeGiB: 0}, []string{"OSImageSizeGiB", "DataImageSizeGiB: 0", "LabelPrefix: empty"}},
		{"long prefix", Options{OSImageSizeGiB: 2, DataImageSizeGiB: 1, LabelPrefix: strings.Repeat("X", 26)}, []string{"at most 25"}},
		{"space prefix", Options{OSImageSizeGiB: 2, DataImageSizeGiB: 1, LabelPrefix: "MY OS"}, []string{"printable ASCII"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Plan(tt.opts)
			if err == nil {
				t.Fatalf("Plan(%+v) succeeded, want error", tt.opts)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Plan(%+v) error %q lacks %q", tt.opts, err, w)
				}
			}
		})
	}
}

func TestPrio(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		attrs uint64
		p     Prio
		want  uint64
	}{
		{"build default", 0, Prio{Priority: 1, Successful: true}, 0x0101000000000000},
		{"platform.md example", 0, Prio{Priority: 2, TriesLeft: 1, Successful: true}, 0x0112000000000000},
		{"keeps other bits", 1<<57 | 1<<0 | 0xf<<48, Prio{Priority: 2, TriesLeft: 3}, 1<<57 | 1<<0 | 0x0032000000000000},
		{"clear", 0x01ff000000000001, Prio{}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := EncodePrio(tt.attrs, tt.p)
			if err != nil || got != tt.want {
				t.Fatalf("EncodePrio(%#x, %+v) = %#x, %v; want %#x", tt.attrs, tt.p, got, err, tt.want)
			}
			if back := DecodePrio(got); back != tt.p {
				t.Errorf("DecodePrio(%#x) = %+v, want %+v", got, back, tt.p)
			}
		})
	}
	if _, err := EncodePrio(0, Prio{Priority: 16}); err == nil {
		t.Error("EncodePrio(priority 16) succeeded, want error")
	}
}

// TestPlanGolden pins every plan combination as text.
func TestPlanGolden(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for _, g := range ValidOSImageSizesGiB() {
		for _, unified := range []bool{false, true} {
			for _, inPlace := range []bool{true, false} {
				opts := Options{OSImageSizeGiB: g, DataImageSizeGiB: 1, Unified: unified, InPlaceUpdates: inPlace, LabelPrefix: "PETREL"}
				l, err := Plan(opts)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "## os=%dGiB data=1GiB unified=%v in-place=%v\n", g, unified, inPlace)
				for _, d := range []*Disk{&l.OSDisk, l.DataDisk} {
					if d == nil {
						continue
					}
					fmt.Fprintf(&b, "disk %s %d bytes\n", d.Name, d.SizeBytes)
					for _, p := range d.Partitions {
						fmt.Fprintf(&b, "%2d %-10s %-18q %s %5d %5d %#016x %s\n", p.Number, p.Key, p.Label, p.Type, p.OffsetMiB, p.SizeMiB, p.Attributes, p.GUID)
					}
				}
			}
		}
	}
	golden := filepath.Join("testdata", "plans.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if b.String() != string(want) {
		t.Errorf("plans differ from %s (run go test -update to accept):\n%s", golden, b.String())
	}
}
