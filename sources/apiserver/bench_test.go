package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkGetSettings measures GET /settings over the Unix socket with 1
// and 8 concurrent clients and a datastore of ~40 settings. Reports gets/s and
// the p99 latency in milliseconds.
func BenchmarkGetSettings(b *testing.B) {
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchGet(b, clients) })
	}
}

func benchGet(b *testing.B, clients int) {
	h := startServer(b, nil, 0o660)
	patch := map[string]any{}
	for i := range 40 {
		patch[fmt.Sprintf("s%d", i/8)] = map[string]any{fmt.Sprintf("k%d", i): fmt.Sprintf("value-%d", i)}
	}
	ctx := context.Background()
	if err := h.client.Set(ctx, "seed", patch); err != nil {
		b.Fatal(err)
	}
	if _, err := h.client.Commit(ctx, "seed"); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				code, _, err := h.client.Raw(ctx, http.MethodGet, "/settings", nil)
				if err != nil || code != 200 {
					b.Errorf("GET /settings = %d, %v", code, err)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "gets/s")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkPatchCommit measures one PATCH of keyCount settings followed by
// POST /tx/commit, sequentially, and reports commits/s.
func BenchmarkPatchCommit(b *testing.B) {
	for _, keyCount := range []int{1, 4} {
		b.Run(fmt.Sprintf("keys=%d", keyCount), func(b *testing.B) {
			h := startServer(b, nil, 0o660)
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				patch := map[string]any{}
				for k := range keyCount {
					patch[fmt.Sprintf("g%d", k)] = map[string]any{"v": i}
				}
				if err := h.client.Set(ctx, "bench", patch); err != nil {
					b.Fatal(err)
				}
				if _, err := h.client.Commit(ctx, "bench"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
		})
	}
}
