package datastore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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

// BenchmarkSetManyLarge measures one SetMany of 10,000 new keys into a
// transaction of a store that holds 40,000 live keys, then the deletion of
// the transaction: the largest write the API accepts, against a large
// store. Most of its cost is the conflict check, made under the writer
// lock that every live write and commit waits for.
func BenchmarkSetManyLarge(b *testing.B) {
	const liveKeys, writeKeys, perGroup = 40000, 10000, 100
	cur, err := Create(b.TempDir(), "1.0.0")
	if err != nil {
		b.Fatal(err)
	}
	live := filepath.Join(cur, liveDir, "settings")
	for g := range liveKeys / perGroup {
		dir := filepath.Join(live, fmt.Sprintf("g%d", g))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		for k := range perGroup {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("k%d", k)), []byte("1"), 0o600); err != nil {
				b.Fatal(err)
			}
		}
	}
	s, err := Open(context.Background(), cur)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// New keys, half of them in the groups of live keys.
	kvs := make([]KeyValue, writeKeys)
	for i := range kvs {
		kvs[i] = KeyValue{MustKey(DataKey, fmt.Sprintf("settings.g%d.new%d", i%(2*liveKeys/perGroup), i)), []byte(`"v"`)}
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		tx := fmt.Sprintf("large-%d", i)
		if err := s.SetMany(ctx, kvs, Pending(tx)); err != nil {
			b.Fatal(err)
		}
		if _, err := s.DeleteTransaction(ctx, tx); err != nil {
			b.Fatal(err)
		}
	}
}
