package bridge

import (
	"errors"
	"io"
	"sync"
)

// Stream is one connection carried by a link. Read, Write, CloseWrite and
// Close may be called from different goroutines.
type Stream struct {
	l       *Link
	session uint32
	id      uint32

	// Guarded by l.mu.
	opened        bool
	recv          []byte
	recvEOF       bool // the peer sent Fin
	sentFin       bool
	credit        int // bytes the peer still takes
	peerCredit    int // bytes the peer may still send
	pendingWindow int // bytes read but not yet granted back
	windowQueued  bool
	err           error // set once: the stream is over
	changed       chan struct{}
	done          chan struct{} // closed with err; made on demand
}

// ID is the stream's number in its session.
func (s *Stream) ID() uint32 { return s.id }

// notify wakes every waiter. Callers hold l.mu.
func (s *Stream) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// fail ends the stream with err. Callers hold l.mu.
func (s *Stream) fail(err error) {
	if s.err != nil {
		return
	}
	s.err = err
	s.recv = nil
	if s.done != nil {
		close(s.done)
	}
	s.notify()
}

// Done is closed when the stream is over: reset, closed, or its link or
// session gone. Both directions finishing normally does not close it.
func (s *Stream) Done() <-chan struct{} {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
		if s.err != nil {
			close(s.done)
		}
	}
	return s.done
}

// wait releases l.mu until the stream changes. Callers hold l.mu.
func (s *Stream) wait() {
	ch := s.changed
	s.l.mu.Unlock()
	<-ch
	s.l.mu.Lock()
}

// Read reads data the peer sent; io.EOF after the peer's Fin.
func (s *Stream) Read(p []byte) (int, error) {
	l := s.l
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(s.recv) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if s.recvEOF {
			return 0, io.EOF
		}
		if len(p) == 0 {
			return 0, nil
		}
		s.wait()
	}
	n := copy(p, s.recv)
	s.recv = s.recv[n:]
	if len(s.recv) == 0 {
		s.recv = nil
	}
	s.pendingWindow += n
	// Grant the bytes back once a quarter of the window is free, or the
	// buffer is empty, so that small exchanges do not wait.
	if !s.windowQueued && !s.recvEOF && (s.pendingWindow >= l.opts.Window/4 || len(s.recv) == 0) {
		s.windowQueued = true
		l.queue = append(l.queue, outFrame{session: s.session, stream: s})
		l.wakeWriter()
	}
	return n, nil
}

// Write sends p, waiting for window as needed.
func (s *Stream) Write(p []byte) (int, error) {
	l := s.l
	l.mu.Lock()
	defer l.mu.Unlock()
	total := 0
	for len(p) > 0 {
		for s.credit == 0 && s.err == nil && !s.sentFin {
			s.wait()
		}
		switch {
		case s.err != nil:
			return total, s.err
		case s.sentFin:
			return total, ErrWriteClosed
		}
		n := min(len(p), s.credit, MaxPayload)
		s.credit -= n
		l.queueFrame(Frame{Type: Data, Session: s.session, Stream: s.id, Payload: p[:n]})
		p, total = p[n:], total+n
	}
	return total, nil
}

// CloseWrite sends Fin: the peer reads io.EOF after the data sent so far.
func (s *Stream) CloseWrite() error {
	l := s.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.sentFin {
		return nil
	}
	s.sentFin = true
	l.queueFrame(Frame{Type: Fin, Session: s.session, Stream: s.id})
	s.notify()
	l.maybeForget(s)
	return nil
}

// Close ends the stream. Unless both directions had finished, the peer
// gets a Reset.
func (s *Stream) Close() error {
	l := s.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.err != nil {
		return nil
	}
	if !(s.sentFin && s.recvEOF) && s.session == l.session && !l.closed {
		l.queueReset(s.id, ReasonAborted, "")
	}
	s.fail(ErrStreamClosed)
	if l.streams[s.id] == s {
		delete(l.streams, s.id)
	}
	return nil
}

// halfCloser is a connection that can end one direction, as
// *net.UnixConn and *Stream do.
type halfCloser interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// Pipe copies between conn and s in both directions until both are done
// or one fails, passing each end of input on as a half close, then closes
// both. It returns the first error other than the end of input.
func Pipe(conn halfCloser, s *Stream) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	shut := func() {
		conn.Close()
		s.Close()
	}
	cp := func(i int, dst, src halfCloser) {
		_, err := io.Copy(dst, src)
		if err == nil {
			err = dst.CloseWrite()
		}
		if err != nil {
			errs[i] = err
			shut()
		}
	}
	wg.Go(func() { cp(0, s, conn) })
	wg.Go(func() { cp(1, conn, s) })
	// A stream that ends abruptly must also end a conn that is blocked
	// reading (an idle keep-alive connection).
	finished := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		select {
		case <-s.Done():
			conn.Close()
		case <-finished:
		}
	})
	wg.Wait()
	close(finished)
	watch.Wait()
	shut()
	return errors.Join(errs...)
}
