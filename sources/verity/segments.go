package verity

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// segmentBytes is roughly how much data one unit of parallel work covers.
// It is large enough that scheduling costs nothing and small enough that
// two workers finish close together.
const segmentBytes = 4 << 20

// readChunkBytes is the most data a worker reads with one ReadAt. It keeps
// the freshly copied data in the core's L2 cache while it is hashed.
const readChunkBytes = 256 << 10

// segmentLeaves returns how many level-0 hash blocks one segment covers.
func (g *geometry) segmentLeaves() uint64 {
	perLeaf := g.perBlock * uint64(g.dataBlockSize)
	n := uint64(segmentBytes) / perLeaf
	return max(n, 1)
}

// forEachSegment calls fn for segments 0..n-1 on up to GOMAXPROCS
// goroutines, each with its own state from newState. It waits for all of
// them. When calls fail, it returns the error of the lowest failing segment
// (every lower segment still runs, so the answer does not depend on
// scheduling) and starts no segment above it.
func forEachSegment[S any](ctx context.Context, n uint64, newState func() S, fn func(ctx context.Context, st S, seg uint64) error) error {
	workers := uint64(runtime.GOMAXPROCS(0))
	workers = min(workers, n)
	var (
		next     atomic.Uint64
		mu       sync.Mutex
		firstBad = n // lowest failing segment so far; n means none
		firstErr error
	)
	fail := func(seg uint64, err error) {
		mu.Lock()
		defer mu.Unlock()
		if seg < firstBad {
			firstBad, firstErr = seg, err
		}
	}
	limit := func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		return firstBad
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			st := newState()
			for {
				seg := next.Add(1) - 1
				if seg >= n || seg > limit() {
					return
				}
				if err := ctx.Err(); err != nil {
					fail(seg, err)
					return
				}
				if err := fn(ctx, st, seg); err != nil {
					fail(seg, err)
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}
