package ami

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/petrel-os/petrel/tools/snapshot"
)

// ProgressPrinter shows upload progress: on a terminal a bar redrawn in
// place, otherwise a line every interval and one at the end of each disk.
type ProgressPrinter struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	start map[string]time.Time
	last  time.Time
}

// NewProgressPrinter returns a printer writing to w; tty selects the bar.
func NewProgressPrinter(w io.Writer, tty bool, interval time.Duration) *ProgressPrinter {
	return &ProgressPrinter{w: w, tty: tty, interval: interval, now: time.Now, start: map[string]time.Time{}}
}

// Update reports the progress of disk; it is Options.Progress.
func (pp *ProgressPrinter) Update(disk string, p snapshot.Progress) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	now := pp.now()
	if _, ok := pp.start[disk]; !ok {
		pp.start[disk] = now
		pp.last = now
	}
	finished := p.Done >= p.Total
	every := pp.interval
	if pp.tty {
		every = 100 * time.Millisecond
	}
	if !finished && now.Sub(pp.last) < every {
		return
	}
	pp.last = now
	pct := 100
	if p.Total > 0 {
		pct = 100 * p.Done / p.Total
	}
	rate := float64(p.Done) / max(now.Sub(pp.start[disk]).Seconds(), 1e-3)
	if pp.tty {
		const width = 30
		bar := strings.Repeat("#", width*pct/100) + strings.Repeat(".", width-width*pct/100)
		fmt.Fprintf(pp.w, "\r\033[K%-4s disk [%s] %3d%% %d/%d blocks, %.0f blocks/s", disk, bar, pct, p.Done, p.Total, rate)
		if finished {
			fmt.Fprintln(pp.w)
		}
		return
	}
	fmt.Fprintf(pp.w, "%s disk: %d of %d blocks uploaded (%d%%), %.0f blocks/s\n", disk, p.Done, p.Total, pct, rate)
}
