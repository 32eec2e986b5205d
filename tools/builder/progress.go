package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress prints what Build is doing. On a terminal it keeps a live
// status line (what is building, done/total, elapsed) under the finished
// lines; elsewhere it prints one plain line per finished package. It is
// safe for concurrent use.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	start time.Time

	mu       sync.Mutex
	done     int
	building map[string]time.Time
	quit     chan struct{}
	wg       sync.WaitGroup
}

func newProgress(w io.Writer, total int) *progress {
	if w == nil {
		w = io.Discard
	}
	p := &progress{w: w, total: total, start: time.Now(), building: map[string]time.Time{}, quit: make(chan struct{})}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		p.wg.Add(1)
		go p.tick() // owned by p; stop ends it
	}
	return p
}

func (p *progress) tick() {
	defer p.wg.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			p.mu.Lock()
			p.redraw()
			p.mu.Unlock()
		}
	}
}

// stop ends the live line.
func (p *progress) stop() {
	close(p.quit)
	p.wg.Wait()
	if p.tty {
		p.mu.Lock()
		fmt.Fprint(p.w, "\r\033[K")
		p.mu.Unlock()
	}
}

func (p *progress) cached(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.line(fmt.Sprintf("[%d/%d] cached %s", p.done, p.total, name))
}

func (p *progress) started(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.building[name] = time.Now()
	p.redraw()
}

func (p *progress) finished(name string, d time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.building, name)
	p.done++
	verb := "built"
	switch {
	case errors.Is(err, context.Canceled):
		verb = "cancelled"
	case err != nil:
		verb = "FAILED"
	}
	p.line(fmt.Sprintf("[%d/%d] %s %s in %.1fs", p.done, p.total, verb, name, d.Seconds()))
}

// line prints a permanent line (above the live line on a terminal).
func (p *progress) line(s string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s\n", s)
		p.redraw()
		return
	}
	fmt.Fprintln(p.w, s)
}

// redraw rewrites the live line; p.mu is held.
func (p *progress) redraw() {
	if !p.tty || len(p.building) == 0 {
		return
	}
	names := slices.Sorted(maps.Keys(p.building))
	fmt.Fprintf(p.w, "\r\033[K[%d/%d] building %s (%s)", p.done, p.total, strings.Join(names, ", "),
		time.Since(p.start).Truncate(time.Second))
}
