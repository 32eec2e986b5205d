package disklayout

import (
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/gpt"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	l, err := Plan(Options{OSImageSizeGiB: 2, DataImageSizeGiB: 1, InPlaceUpdates: true, LabelPrefix: "PETREL"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		mutate func(*gpt.Table)
		wants  []string
	}{
		{"match", func(*gpt.Table) {}, nil},
		{"attributes ignored", func(tb *gpt.Table) { tb.Partitions[7].Attributes = 1 << 49 }, nil},
		{"moved, renamed, retyped", func(tb *gpt.Table) {
			tb.Partitions[3].LastLBA--
			tb.Partitions[4].Name = "X"
			tb.Partitions[5].Type = TypeData
		}, []string{"partition 4 (ROOT-A): sectors", "partition 5 (HASH-A): label \"X\"", "partition 6 (RESERVED-A): type"}},
		{"missing and extra", func(tb *gpt.Table) {
			tb.Partitions = tb.Partitions[:12]
			tb.Partitions = append(tb.Partitions, gpt.Partition{Number: 14, Name: "extra"})
		}, []string{"partition 13 (DATA-A): missing", "partition 14 (\"extra\"): not in the plan"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := l.OSDisk.GPT([]byte("s"))
			tt.mutate(tb)
			err := l.OSDisk.Verify(tb)
			if len(tt.wants) == 0 {
				if err != nil {
					t.Errorf("Verify = %v, want nil", err)
				}
				return
			}
			for _, w := range tt.wants {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Verify = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}
