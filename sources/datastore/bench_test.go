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

// largeStore opens a store of 40,000 live keys (written as files before
// Open, which is quicker than logging them) and returns it with a write of
// 10,000 new keys (half of them in the directories of live keys): the
// largest write the API accepts, against a large store.
func largeStore(b *testing.B) (*Store, []KeyValue) {
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
	b.Cleanup(func() { s.Close() })
	kvs := make([]KeyValue, writeKeys)
	for i := range kvs {
		kvs[i] = KeyValue{MustKey(DataKey, fmt.Sprintf("settings.g%d.new%d", i%(2*liveKeys/perGroup), i)), []byte(`"v"`)}
	}
	return s, kvs
}

// BenchmarkLargeWrite measures a write of 10,000 keys into a store of
// 40,000. conflict-check: what such a write does under the writer lock
// that every live write and commit waits for (the check of its keys
// against the logical live state). pending: SetMany into a transaction
// and DeleteTransaction, through the log. commit-checkpoint: SetMany,
// Commit and Checkpoint, which writes the 10,000 live files; the
// committer does nothing else meanwhile.
func BenchmarkLargeWrite(b *testing.B) {
	ctx := context.Background()
	b.Run("conflict-check", func(b *testing.B) {
		s, kvs := largeStore(b)
		b.ResetTimer()
		for range b.N {
			s.wmu.Lock()
			err := s.checkConflicts(kvs, nil)
			s.wmu.Unlock()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pending", func(b *testing.B) {
		s, kvs := largeStore(b)
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
	})
	b.Run("commit-checkpoint", func(b *testing.B) {
		s, kvs := largeStore(b)
		b.ResetTimer()
		for i := range b.N {
			for j := range kvs {
				kvs[j].Value = fmt.Appendf(nil, "%d", i)
			}
			if err := s.SetMany(ctx, kvs, Pending("t")); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Commit(ctx, "t"); err != nil {
				b.Fatal(err)
			}
			if err := s.Checkpoint(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
