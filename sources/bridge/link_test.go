package bridge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// socketpair returns the two ends of a Unix stream socket pair.
func socketpair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	return conns[0], conns[1]
}

// serial stands in for QEMU's virtio-serial channel: two ends that can be
// attached and detached. Bytes for an end that is not attached wait (QEMU
// stops reading from the host socket while the guest has the port closed)
// and go to whoever attaches next; bytes already handed to an end that
// detaches are lost, so a frame may be cut short.
type serial struct {
	mu     sync.Mutex
	cond   *sync.Cond
	conns  [2]net.Conn // relay side of each attached end
	held   [2][]byte   // bytes waiting for end i
	closed bool
	wg     sync.WaitGroup
}

const (
	hostEnd  = 0
	guestEnd = 1
)

func newSerial(t *testing.T) *serial {
	s := &serial{}
	s.cond = sync.NewCond(&s.mu)
	for i := range 2 {
		s.wg.Go(func() { s.deliver(i) })
	}
	t.Cleanup(s.close)
	return s
}

func (s *serial) attach(t *testing.T, end int) net.Conn {
	a, b := socketpair(t)
	s.mu.Lock()
	s.conns[end] = a
	s.cond.Broadcast()
	s.mu.Unlock()
	s.wg.Go(func() {
		buf := make([]byte, 4096)
		for {
			n, err := a.Read(buf)
			s.mu.Lock()
			s.held[1-end] = append(s.held[1-end], buf[:n]...)
			s.cond.Broadcast()
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	})
	return b
}

func (s *serial) detach(end int) {
	s.mu.Lock()
	c := s.conns[end]
	s.conns[end] = nil
	s.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// inject queues raw bytes for end.
func (s *serial) inject(end int, b []byte) {
	s.mu.Lock()
	s.held[end] = append(s.held[end], b...)
	s.cond.Broadcast()
	s.mu.Unlock()
}

func (s *serial) deliver(end int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for !s.closed && (s.conns[end] == nil || len(s.held[end]) == 0) {
			s.cond.Wait()
		}
		if s.closed {
			return
		}
		c, data := s.conns[end], s.held[end]
		s.held[end] = nil
		s.mu.Unlock()
		n, err := c.Write(data)
		s.mu.Lock()
		if err != nil {
			s.held[end] = append(data[n:], s.held[end]...)
			if s.conns[end] == c {
				s.conns[end] = nil
			}
		}
	}
}

func (s *serial) close() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.cond.Broadcast()
	s.mu.Unlock()
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	s.wg.Wait()
}

// serveUnix serves a Unix socket named name until the test ends, calling
// handle for each connection (which it then closes); stop is closed when
// the test ends.
func serveUnix(t *testing.T, name string, handle func(c net.Conn, stop <-chan struct{})) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c, stop)
			})
		}
	})
	return path
}

// echoServer serves a Unix socket that echoes each connection.
func echoServer(t *testing.T) string {
	return serveUnix(t, "echo.sock", func(c net.Conn, _ <-chan struct{}) { io.Copy(c, c) })
}

// holdServer serves a Unix socket that reads each connection to its end
// and then keeps it open without writing.
func holdServer(t *testing.T) string {
	return serveUnix(t, "hold.sock", func(c net.Conn, stop <-chan struct{}) {
		io.Copy(io.Discard, c)
		<-stop
	})
}

// rig is a host link serving a Unix socket and a guest link dialling a
// far end, over a serial channel.
type rig struct {
	t      *testing.T
	serial *serial
	host   *Link
	sock   string // the host's listening socket
	far    string // what guests dial
	guest  *Link
	stop   context.CancelFunc
	done   chan error
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func newRig(t *testing.T, far string) *rig {
	t.Helper()
	r := &rig{t: t, serial: newSerial(t), far: far, sock: filepath.Join(t.TempDir(), "api.sock")}
	r.host = NewLink(Host, r.serial.attach(t, hostEnd), Options{Logger: testLogger(t).With("end", "host")})
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("unix", r.sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.host.Run(ctx) })
	wg.Go(func() { Serve(ctx, ln, r.host, 20*time.Second, testLogger(t).With("end", "serve")) })
	t.Cleanup(func() {
		r.stopGuest()
		cancel()
		wg.Wait()
	})
	return r
}

// startGuest attaches a new guest agent to the channel.
func (r *rig) startGuest(opts Options) {
	r.t.Helper()
	opts.Logger = testLogger(r.t).With("end", "guest")
	if opts.Dial == nil {
		opts.Dial = func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", r.far)
		}
	}
	r.guest = NewLink(Guest, r.serial.attach(r.t, guestEnd), opts)
	ctx, cancel := context.WithCancel(context.Background())
	r.stop, r.done = cancel, make(chan error, 1)
	g := r.guest
	go func() { r.done <- g.Run(ctx) }()
}

// stopGuest stops the guest agent, like a reboot, and detaches it.
func (r *rig) stopGuest() {
	if r.stop == nil {
		return
	}
	r.stop()
	if err := <-r.done; err != nil {
		r.t.Errorf("guest Run = %v", err)
	}
	r.serial.detach(guestEnd)
	r.stop = nil
}

func (r *rig) dial() net.Conn {
	r.t.Helper()
	c, err := net.Dial("unix", r.sock)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes a line and reads it back from an echo far end.
func roundTrip(c net.Conn, line string) error {
	c.SetDeadline(time.Now().Add(20 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return fmt.Errorf("echo = %q, want %q", got, line)
	}
	return nil
}

func TestConcurrentStreams(t *testing.T) {
	r := newRig(t, echoServer(t))
	r.startGuest(Options{})
	const n = 16
	size := 3*DefaultWindow + 12345 // more than a window each way
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			c, err := net.Dial("unix", r.sock)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(60 * time.Second))
			want := make([]byte, size)
			rand.Read(want)
			go func() {
				c.Write(want)
				c.(*net.UnixConn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				errs <- fmt.Errorf("stream %d: %w", i, err)
				return
			}
			if !bytes.Equal(got, want) {
				errs <- fmt.Errorf("stream %d: got %d bytes back, want the %d sent", i, len(got), len(want))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Every stream ended on both sides.
	waitFor(t, "streams forgotten", func() bool {
		r.host.mu.Lock()
		defer r.host.mu.Unlock()
		r.guest.mu.Lock()
		defer r.guest.mu.Unlock()
		return len(r.host.streams) == 0 && len(r.guest.streams) == 0
	})
}

// TestSlowStreamDoesNotBlockOthers fills one stream both ways (its client
// never reads) and checks that another stream still works.
func TestSlowStreamDoesNotBlockOthers(t *testing.T) {
	r := newRig(t, echoServer(t))
	r.startGuest(Options{})
	slow := r.dial()
	wrote := make(chan int64, 1)
	go func() {
		var total int64
		buf := make([]byte, 64<<10)
		slow.SetWriteDeadline(time.Now().Add(5 * time.Second))
		for {
			n, err := slow.Write(buf)
			total += int64(n)
			if err != nil {
				wrote <- total
				return
			}
		}
	}()
	total := <-wrote // the write stalled: the windows and socket buffers are full
	t.Logf("the slow stream took %d bytes before it stalled", total)
	if total > 64<<20 {
		t.Fatalf("the slow stream took %d bytes: no flow control", total)
	}
	for i := range 5 {
		if err := roundTrip(r.dial(), fmt.Sprintf("fast %d", i)); err != nil {
			t.Fatalf("a stream beside a stalled one: %v", err)
		}
	}
}

// TestGuestRestart stops the guest agent with a stream open and starts a
// new one on the same channel, with bytes for the old session still in
// it: the open stream ends, a client that connects while no agent runs
// waits, and new streams work.
func TestGuestRestart(t *testing.T) {
	r := newRig(t, echoServer(t))
	r.startGuest(Options{})
	c := r.dial()
	if err := roundTrip(c, "before"); err != nil {
		t.Fatal(err)
	}
	first := r.host.Session()
	r.stopGuest()
	// The client keeps talking to the stopped guest: its bytes wait in the
	// channel and reach the next agent, which must drop them.
	io.WriteString(c, "to the old session\n")
	time.Sleep(100 * time.Millisecond)

	waiting := make(chan error, 1)
	go func() { waiting <- roundTrip(r.dial(), "while restarting") }()
	time.Sleep(300 * time.Millisecond)
	r.startGuest(Options{})

	if err := <-waiting; err != nil {
		t.Fatalf("a client that connected while no agent ran: %v", err)
	}
	if s := r.host.Session(); s == first || s == 0 {
		t.Errorf("host session after the restart = %08x, want a new one (was %08x)", s, first)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Errorf("the stream of the old session read %d bytes, want it ended", n)
	}
	if r.guest.Stale() == 0 {
		t.Errorf("the new guest dropped no frames of the old session")
	}
	if err := roundTrip(r.dial(), "after"); err != nil {
		t.Fatal(err)
	}
}

// TestWaitSession waits for the guest's hello: 0 when the context ends
// with no agent, the session once one says hello, at once.
func TestWaitSession(t *testing.T) {
	r := newRig(t, echoServer(t))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if s := r.host.WaitSession(ctx); s != 0 || ctx.Err() == nil {
		t.Errorf("WaitSession without a guest agent = %08x before its context ended (%v), want 0 after", s, ctx.Err())
	}
	r.startGuest(Options{})
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if s := r.host.WaitSession(ctx); s == 0 || s != r.host.Session() {
		t.Errorf("WaitSession with a guest agent = %08x (%v), want the host's session %08x", s, ctx.Err(), r.host.Session())
	}
}

// TestStaleBytes puts garbage, a frame cut short and a whole frame of an
// old session into the channel before a guest attaches.
func TestStaleBytes(t *testing.T) {
	r := newRig(t, echoServer(t))
	cut := AppendFrame(nil, Frame{Type: Data, Session: 42, Stream: 1, Payload: make([]byte, 5000)})[:HeaderSize+50]
	r.serial.inject(guestEnd, []byte("\x00garbagePBR1"))
	r.serial.inject(guestEnd, AppendFrame(nil, Frame{Type: Open, Session: 42, Stream: 9}))
	r.serial.inject(guestEnd, cut)
	// And the other way: a cut frame, then an old session's data.
	r.serial.inject(hostEnd, cut)
	r.serial.inject(hostEnd, AppendFrame(nil, Frame{Type: Data, Session: 42, Stream: 1, Payload: []byte("old")}))
	r.startGuest(Options{})
	if err := roundTrip(r.dial(), "through stale bytes"); err != nil {
		t.Fatal(err)
	}
	if r.guest.Stale() == 0 || r.host.Stale() == 0 {
		t.Errorf("stale frames dropped: guest %d, host %d; want both > 0", r.guest.Stale(), r.host.Stale())
	}
}

// TestMalformedFrames sends garbage and a frame that breaks the protocol
// of an open stream (data after its fin): the link survives, the stream is
// reset and its client closed.
func TestMalformedFrames(t *testing.T) {
	r := newRig(t, holdServer(t))
	r.startGuest(Options{})
	c := r.dial()
	io.WriteString(c, "some data")
	c.(*net.UnixConn).CloseWrite()
	var id uint32
	waitFor(t, "the guest to see the client's fin", func() bool {
		r.guest.mu.Lock()
		defer r.guest.mu.Unlock()
		for sid, s := range r.guest.streams {
			if s.recvEOF {
				id = sid
				return true
			}
		}
		return false
	})
	session := r.host.Session()
	r.serial.inject(guestEnd, []byte("PBR1 not really a header"))
	r.serial.inject(guestEnd, AppendFrame(nil, Frame{Type: Data, Session: session, Stream: id, Payload: []byte("after fin")}))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the client of the stream that got data after its fin is still open")
	}
	r.guest.mu.Lock()
	_, open := r.guest.streams[id]
	r.guest.mu.Unlock()
	if open {
		t.Errorf("the guest kept stream %d open", id)
	}
	if s := r.host.Session(); s != session {
		t.Errorf("session changed from %08x to %08x: a bad stream must not reset the session", session, s)
	}
	r.far = echoServer(t) // the guest's Dial reads r.far each time
	if err := roundTrip(r.dial(), "after"); err != nil {
		t.Fatalf("after a malformed stream: %v", err)
	}
	if s := r.host.Session(); s != session {
		t.Errorf("session changed from %08x to %08x after a new stream", session, s)
	}
}

// TestDialFailureWaits starts with no far end: a client waits until the
// far end appears.
func TestDialFailureWaits(t *testing.T) {
	far := filepath.Join(t.TempDir(), "late.sock")
	r := newRig(t, far)
	r.startGuest(Options{})
	done := make(chan error, 1)
	go func() { done <- roundTrip(r.dial(), "late") }()
	time.Sleep(time.Second)
	ln, err := net.Listen("unix", far)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestNewHost restarts the host end while the guest agent keeps running:
// the host's probe makes the guest start a new session.
func TestNewHost(t *testing.T) {
	s := newSerial(t)
	far := echoServer(t)
	guest := NewLink(Guest, s.attach(t, guestEnd), Options{Logger: testLogger(t), Dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", far)
	}})
	gctx, gcancel := context.WithCancel(context.Background())
	defer gcancel()
	go guest.Run(gctx)
	var sessions []uint32
	for i := range 2 {
		host := NewLink(Host, s.attach(t, hostEnd), Options{Logger: testLogger(t)})
		ctx, cancel := context.WithCancel(context.Background())
		go host.Run(ctx)
		ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
		st, err := host.Dial(ctx2)
		cancel2()
		if err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		io.WriteString(st, "x")
		b := make([]byte, 1)
		if _, err := io.ReadFull(st, b); err != nil || b[0] != 'x' {
			t.Fatalf("host %d: echo %q, %v", i, b, err)
		}
		st.Close()
		sessions = append(sessions, host.Session())
		cancel()
		<-host.Done()
		s.detach(hostEnd)
	}
	if sessions[0] == sessions[1] {
		t.Errorf("the second host got the first host's session %08x", sessions[0])
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
