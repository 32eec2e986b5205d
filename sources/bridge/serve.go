package bridge

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Serve accepts connections on ln and carries each over l, a Host link, to
// the guest's far end (the API socket), until ctx ends or ln fails; then it
// closes ln and every connection it carries. A connection made while the
// guest is not ready (booting, rebooting, its API socket not there yet)
// waits up to wait for it before it is closed.
func Serve(ctx context.Context, ln net.Listener, l *Link, wait time.Duration, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-l.Done():
		}
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			cancel()
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		hc, ok := c.(halfCloser)
		if !ok {
			c.Close()
			continue
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
			dctx, dcancel := context.WithTimeout(ctx, wait)
			s, err := l.Dial(dctx)
			dcancel()
			if err != nil {
				log.Info("client connection closed: no stream to the guest", "error", err)
				return
			}
			if err := Pipe(hc, s); err != nil {
				log.Debug("client connection ended with an error", "stream", s.ID(), "error", err)
			}
		})
	}
}
