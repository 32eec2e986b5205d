package datastore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCommit measures SetMany into a transaction plus Commit on the
// Store alone (no HTTP), with 1, 4 and 8 concurrent writers. Reports
// commits/s and records per log fdatasync (the group-commit batch size).
func BenchmarkCommit(b *testing.B) {
	for _, keys := range []int{1, 4} {
		for _, writers := range []int{1, 4, 8} {
			b.Run(fmt.Sprintf("keys=%d/writers=%d", keys, writers), func(b *testing.B) {
				s, _ := newStore(b)
				ctx := context.Background()
				var next atomic.Int64
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for w := range writers {
					wg.Go(func() {
						tx := fmt.Sprintf("bench-%d", w)
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							kvs := make([]KeyValue, keys)
							for k := range keys {
								kvs[k] = KeyValue{MustKey(DataKey, fmt.Sprintf("settings.w%dk%d.v", w, k)), fmt.Appendf(nil, "%d", i)}
							}
							if err := s.SetMany(ctx, kvs, Pending(tx)); err != nil {
								b.Error(err)
								return
							}
							if _, err := s.Commit(ctx, tx); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
				if n := s.c.batches.Load(); n > 0 {
					b.ReportMetric(float64(s.c.records.Load())/float64(n), "records/fsync")
				}
			})
		}
	}
}
