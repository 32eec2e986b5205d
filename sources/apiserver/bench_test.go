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

// BenchmarkGetSettings measures GET /settings over the Unix socket with 1,
// 2 and 8 concurrent clients and a datastore of ~40 settings. Reports gets/s
// and the p99 latency in milliseconds.
func BenchmarkGetSettings(b *testing.B) {
	for _, clients := range []int{1, 2, 8} {
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
	b.ResetTimer()
	lat, elapsed := runClients(b, clients, func(int, int) error {
		code, _, err := h.client.Raw(ctx, http.MethodGet, "/settings", nil)
		if err == nil && code != 200 {
			err = fmt.Errorf("GET /settings = %d", code)
		}
		return err
	})
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "gets/s")
	reportP99(b, lat)
}

// BenchmarkPatchCommit measures PATCH of keys settings into a transaction
// followed by POST /tx/commit, with 1, 4 and 8 concurrent clients, each
// with its own transaction and settings. Reports commits/s and the p99
// latency of one PATCH+commit in milliseconds. Concurrent commits share
// the datastore's log fsyncs (group commit).
func BenchmarkPatchCommit(b *testing.B) {
	for _, keys := range []int{1, 4} {
		for _, clients := range []int{1, 4, 8} {
			b.Run(fmt.Sprintf("keys=%d/clients=%d", keys, clients), func(b *testing.B) { benchCommit(b, keys, clients) })
		}
	}
}

func benchCommit(b *testing.B, keys, clients int) {
	h := startServer(b, nil, 0o660)
	ctx := context.Background()
	b.ResetTimer()
	lat, elapsed := runClients(b, clients, func(c, i int) error {
		tx := fmt.Sprintf("bench-%d", c)
		patch := map[string]any{}
		for k := range keys {
			patch[fmt.Sprintf("c%dg%d", c, k)] = map[string]any{"v": i}
		}
		if err := h.client.Set(ctx, tx, patch); err != nil {
			return err
		}
		_, err := h.client.Commit(ctx, tx)
		return err
	})
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "commits/s")
	reportP99(b, lat)
}

// runClients runs op b.N times in total from clients goroutines and
// returns each call's latency and the wall time.
func runClients(b *testing.B, clients int, op func(client, i int) error) ([]time.Duration, time.Duration) {
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := op(c, int(i)); err != nil {
					b.Error(err)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		})
	}
	wg.Wait()
	return slices.Concat(lat...), time.Since(start)
}

func reportP99(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
