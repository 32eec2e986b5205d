package bridge

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultWindow        = 256 << 10
	DefaultHelloInterval = 500 * time.Millisecond
	DefaultMaxStreams    = 64
	DefaultDialTimeout   = 5 * time.Second
)

// Errors of links and streams.
var (
	// ErrClosed is returned once the link has stopped.
	ErrClosed = errors.New("bridge link closed")
	// ErrSessionReset is returned for a stream of a session that ended:
	// the guest rebooted or restarted its agent.
	ErrSessionReset = errors.New("bridge session reset: the guest restarted")
	// ErrStreamClosed is returned by Read and Write after Close.
	ErrStreamClosed = errors.New("bridge stream closed")
	// ErrWriteClosed is returned by Write after CloseWrite.
	ErrWriteClosed = errors.New("bridge stream closed for writing")
)

// Reason says why a stream was reset.
type Reason uint8

// Reset reasons.
const (
	ReasonAborted    Reason = 1 // the peer closed the stream before both sides finished
	ReasonDialFailed Reason = 2 // the guest could not connect the stream's far end
	ReasonRefused    Reason = 3 // the guest has too many streams, or is stopping
	ReasonProtocol   Reason = 4 // the peer broke the protocol on this stream
)

func (r Reason) String() string {
	switch r {
	case ReasonAborted:
		return "aborted"
	case ReasonDialFailed:
		return "dial failed"
	case ReasonRefused:
		return "refused"
	case ReasonProtocol:
		return "protocol error"
	}
	return fmt.Sprintf("reason %d", uint8(r))
}

// ResetError is a stream reset by the peer.
type ResetError struct {
	Reason  Reason
	Message string
}

func (e *ResetError) Error() string {
	if e.Message == "" {
		return "bridge stream reset by peer: " + e.Reason.String()
	}
	return "bridge stream reset by peer: " + e.Reason.String() + ": " + e.Message
}

// Retryable reports whether a failed Open may succeed when tried again:
// the session was reset, or the guest could not yet reach its socket or
// was too busy.
func Retryable(err error) bool {
	var re *ResetError
	if errors.As(err, &re) {
		return re.Reason == ReasonDialFailed || re.Reason == ReasonRefused
	}
	return errors.Is(err, ErrSessionReset)
}

// Role is the side of a link.
type Role int

// Roles.
const (
	// Host is the end on the machine that runs QEMU: it opens streams.
	Host Role = iota
	// Guest is the agent in the VM: it accepts streams and dials their
	// far end.
	Guest
)

func (r Role) String() string {
	if r == Guest {
		return "guest"
	}
	return "host"
}

// Options tune a link. Zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// Window is how many bytes of one stream a side buffers before its
	// reader takes them; the peer sends no more than that.
	Window int
	// HelloInterval is how often a guest repeats Hello until it is acked.
	HelloInterval time.Duration
	// MaxStreams is how many streams a guest keeps open at once; it
	// refuses more.
	MaxStreams int
	// Dial connects the far end of a new stream (guest only).
	Dial func(ctx context.Context) (net.Conn, error)
	// DialTimeout bounds Dial.
	DialTimeout time.Duration
	// DrainTimeout is how long a guest whose Run context ends keeps
	// serving its open streams (a reboot's answer still gets out).
	DrainTimeout time.Duration
}

// Link is one end of the bridge over port. It is safe for concurrent use.
type Link struct {
	role Role
	port io.ReadWriteCloser
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	session  uint32 // current session; 0: none yet
	up       bool   // host: a guest said Hello; guest: the host acked
	upCh     chan struct{}
	nonce    uint32 // host: its own; guest: the acking host's
	streams  map[uint32]*Stream
	nextID   uint32
	closed   bool
	draining bool
	done     chan struct{}
	// Outbound frames: the writer goroutine sends hello and ack first
	// (each at most once however often asked), then the queue in order.
	queue     []outFrame
	qChanged  chan struct{}
	helloDue  bool
	ackDue    bool
	goroutine sync.WaitGroup
	stale     int64 // frames of other sessions dropped
}

// outFrame is a queued frame. Window frames are built when sent, from the
// stream's pending increment, so that a stream has at most one queued.
type outFrame struct {
	session uint32
	stream  *Stream // Window frames only
	raw     []byte
}

// NewLink returns a link of role over port. Run starts it.
func NewLink(role Role, port io.ReadWriteCloser, opts Options) *Link {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.HelloInterval <= 0 {
		opts.HelloInterval = DefaultHelloInterval
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = DefaultMaxStreams
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	return &Link{
		role: role, port: port, opts: opts, log: opts.Logger.With("role", role.String()),
		upCh: make(chan struct{}), streams: map[uint32]*Stream{}, done: make(chan struct{}),
		qChanged: make(chan struct{}),
	}
}

// randomNonce returns a random non-zero number.
func randomNonce() uint32 {
	var b [4]byte
	for {
		_, _ = rand.Read(b[:])
		if n := binary.BigEndian.Uint32(b[:]); n != 0 {
			return n
		}
	}
}

// Run runs the link until ctx is done or the port fails, and closes the
// port. It returns nil when ctx ended it.
func (l *Link) Run(ctx context.Context) error {
	l.mu.Lock()
	l.queueRaw(0, Preamble())
	if l.role == Host {
		l.nonce = randomNonce()
		l.queueFrame(Frame{Type: Probe, Payload: binary.BigEndian.AppendUint32(nil, l.nonce)})
	} else {
		l.session = randomNonce()
		l.helloDue = true
	}
	l.mu.Unlock()

	l.goroutine.Go(l.writeLoop)
	if l.role == Guest {
		l.goroutine.Go(l.helloLoop)
	}
	stop := make(chan struct{})
	var stopper sync.WaitGroup
	stopper.Go(func() {
		select {
		case <-ctx.Done():
			l.drain()
			l.port.Close()
		case <-stop:
		}
	})
	err := l.readLoop()
	close(stop)
	stopper.Wait()
	l.shutdown()
	l.port.Close()
	l.goroutine.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Done is closed when the link has stopped.
func (l *Link) Done() <-chan struct{} { return l.done }

// drain stops new streams and waits up to DrainTimeout for the open ones.
func (l *Link) drain() {
	l.mu.Lock()
	l.draining = true
	l.mu.Unlock()
	deadline := time.Now().Add(l.opts.DrainTimeout)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		n := len(l.streams)
		l.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shutdown ends every stream and wakes every waiter.
func (l *Link) shutdown() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	for _, s := range l.streams {
		s.fail(ErrClosed)
	}
	l.streams = map[uint32]*Stream{}
	close(l.done)
	l.wakeWriter()
}

func (l *Link) readLoop() error {
	dec := NewDecoder(l.port)
	var skipped int64
	for {
		f, err := dec.Next()
		if dec.Skipped != skipped {
			l.log.Debug("skipped bytes that are not frames of this link (a preamble, stale or corrupt)", "bytes", dec.Skipped-skipped)
			skipped = dec.Skipped
		}
		if err != nil {
			return fmt.Errorf("read bridge port: %w", err)
		}
		l.handle(f)
	}
}

// handle acts on one frame from the peer.
func (l *Link) handle(f Frame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch f.Type {
	case Hello:
		if l.role == Host && f.Session != 0 {
			l.hostHello(f.Session)
			return
		}
	case Ack:
		if l.role == Guest && f.Session == l.session && len(f.Payload) == 4 {
			if !l.up {
				l.up = true
				l.nonce = binary.BigEndian.Uint32(f.Payload)
				close(l.upCh)
				l.log.Info("session up", "session", fmt.Sprintf("%08x", l.session), "host", fmt.Sprintf("%08x", l.nonce))
			}
			return
		}
	case Probe:
		if l.role == Guest && len(f.Payload) == 4 {
			l.guestProbe(binary.BigEndian.Uint32(f.Payload))
			return
		}
	default:
		if l.up && f.Session == l.session {
			l.streamFrame(f)
			return
		}
	}
	l.stale++
	l.log.Debug("dropped frame", "type", f.Type.String(), "session", fmt.Sprintf("%08x", f.Session), "stream", f.Stream)
}

// hostHello handles a guest's Hello: a new session replaces the old one.
func (l *Link) hostHello(session uint32) {
	if session != l.session {
		old := l.session
		l.resetSession()
		l.session = session
		// The new guest may be stuck on a frame the old one was sent.
		l.queueRaw(0, Preamble())
		if !l.up {
			l.up = true
			close(l.upCh)
		}
		l.log.Info("guest session", "session", fmt.Sprintf("%08x", session), "replaces", fmt.Sprintf("%08x", old))
	}
	l.ackDue = true
	l.wakeWriter()
}

// guestProbe handles a host's Probe: a new host gets a new session.
func (l *Link) guestProbe(hostNonce uint32) {
	if !l.up {
		l.helloDue = true // say Hello now, not at the next tick
		l.wakeWriter()
		return
	}
	if hostNonce == l.nonce {
		return // a copy of the probe that started this session
	}
	l.log.Info("new host; starting a new session", "host", fmt.Sprintf("%08x", hostNonce))
	l.resetSession()
	l.session = randomNonce()
	l.up = false
	l.upCh = make(chan struct{})
	l.queueRaw(0, Preamble())
	l.helloDue = true
	l.wakeWriter()
}

// resetSession ends every stream of the current session and drops their
// queued frames.
func (l *Link) resetSession() {
	for _, s := range l.streams {
		s.fail(ErrSessionReset)
	}
	l.streams = map[uint32]*Stream{}
	q := l.queue[:0]
	for _, o := range l.queue {
		if o.session == 0 {
			q = append(q, o)
		}
	}
	clear(l.queue[len(q):])
	l.queue = q
}

// streamFrame handles a frame of a stream of the current session.
func (l *Link) streamFrame(f Frame) {
	s := l.streams[f.Stream]
	if f.Type == Open {
		if l.role != Guest {
			return
		}
		if s != nil || f.Stream == 0 {
			l.queueReset(f.Stream, ReasonProtocol, "stream id in use")
			return
		}
		if l.draining || len(l.streams) >= l.opts.MaxStreams || l.opts.Dial == nil {
			l.queueReset(f.Stream, ReasonRefused, fmt.Sprintf("%d streams open, agent stopping: %v", len(l.streams), l.draining))
			return
		}
		s = l.newStream(f.Stream)
		s.opened = true
		l.goroutine.Go(func() { l.accept(s) })
		return
	}
	if s == nil {
		return // a late frame of a stream that ended
	}
	switch f.Type {
	case Opened:
		if l.role == Host && !s.opened {
			s.opened = true
			s.notify()
		}
	case Data:
		if s.recvEOF || len(f.Payload) > s.peerCredit {
			l.queueReset(s.id, ReasonProtocol, "data beyond the window or after fin")
			s.fail(&ResetError{Reason: ReasonProtocol, Message: "peer sent data beyond the window or after fin"})
			delete(l.streams, s.id)
			return
		}
		s.peerCredit -= len(f.Payload)
		s.recv = append(s.recv, f.Payload...)
		s.notify()
	case Window:
		if len(f.Payload) == 4 {
			s.credit += int(binary.BigEndian.Uint32(f.Payload))
			s.notify()
		}
	case Fin:
		s.recvEOF = true
		s.notify()
		l.maybeForget(s)
	case Reset:
		re := &ResetError{Reason: ReasonAborted}
		if len(f.Payload) > 0 {
			re.Reason, re.Message = Reason(f.Payload[0]), string(f.Payload[1:])
		}
		s.fail(re)
		delete(l.streams, s.id)
	}
}

// accept dials the far end of a stream the host opened and pipes it.
func (l *Link) accept(s *Stream) {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.DialTimeout)
	conn, err := l.opts.Dial(ctx)
	cancel()
	if err != nil {
		l.log.Info("stream refused: cannot reach its far end", "stream", s.id, "error", err)
		l.mu.Lock()
		if l.streams[s.id] == s {
			l.queueReset(s.id, ReasonDialFailed, err.Error())
			delete(l.streams, s.id)
			s.fail(&ResetError{Reason: ReasonDialFailed, Message: err.Error()})
		}
		l.mu.Unlock()
		return
	}
	l.mu.Lock()
	if l.streams[s.id] == s {
		l.queueFrame(Frame{Type: Opened, Session: s.session, Stream: s.id})
	}
	l.mu.Unlock()
	if err := Pipe(conn.(halfCloser), s); err != nil {
		l.log.Debug("stream ended with an error", "stream", s.id, "error", err)
	}
}

// Open opens a stream to the guest's far end (host only). It waits for a
// guest session as long as ctx allows. Errors for which Retryable is true
// may go away when Open is called again; Dial does that.
func (l *Link) Open(ctx context.Context) (*Stream, error) {
	if l.role != Host {
		return nil, errors.New("open bridge stream: only the host end opens streams")
	}
	l.mu.Lock()
	if err := l.waitUpLocked(ctx); err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("open bridge stream: wait for the guest agent: %w", err)
	}
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	l.nextID++
	s := l.newStream(l.nextID)
	l.queueFrame(Frame{Type: Open, Session: s.session, Stream: s.id})
	for !s.opened && s.err == nil {
		ch := s.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.Close()
			return nil, fmt.Errorf("open bridge stream: wait for the guest to connect it: %w", ctx.Err())
		}
		l.mu.Lock()
	}
	err := s.err
	l.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("open bridge stream: %w", err)
	}
	return s, nil
}

// Dial opens a stream, trying again while the guest is not ready (no
// session yet, a session reset, the guest's socket not there yet) until
// ctx ends.
func (l *Link) Dial(ctx context.Context) (*Stream, error) {
	for {
		s, err := l.Open(ctx)
		if err == nil || !Retryable(err) {
			return s, err
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%w)", err, ctx.Err())
		}
	}
}

// waitUpLocked waits, with l.mu held (and released while it waits),
// until a guest session is up or the link has stopped; it returns ctx's
// error when ctx ends first.
func (l *Link) waitUpLocked(ctx context.Context) error {
	for !l.up && !l.closed {
		ch := l.upCh
		l.mu.Unlock()
		select {
		case <-ch:
		case <-l.done:
		case <-ctx.Done():
			l.mu.Lock()
			return ctx.Err()
		}
		l.mu.Lock()
	}
	return nil
}

// WaitSession waits for a guest session (host only: the guest's agent
// says hello) and returns its number, or 0 when the link stops or ctx
// ends first.
func (l *Link) WaitSession(ctx context.Context) uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.waitUpLocked(ctx) // on ctx's end: the session, if one came
	if !l.up {
		return 0
	}
	return l.session
}

// Session returns the current session number, 0 before the first.
func (l *Link) Session() uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.up {
		return 0
	}
	return l.session
}

// Stale returns the number of frames of other sessions dropped so far.
func (l *Link) Stale() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stale
}

// helloLoop repeats the guest's Hello until the host acks it.
func (l *Link) helloLoop() {
	t := time.NewTicker(l.opts.HelloInterval)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
		}
		l.mu.Lock()
		if !l.up {
			l.helloDue = true
			l.wakeWriter()
		}
		l.mu.Unlock()
	}
}

// writeLoop sends queued frames until the link closes or a write fails.
func (l *Link) writeLoop() {
	var buf []byte
	for {
		l.mu.Lock()
		for !l.closed && len(l.queue) == 0 && !l.helloDue && !l.ackDue {
			ch := l.qChanged
			l.mu.Unlock()
			<-ch
			l.mu.Lock()
		}
		if l.closed {
			l.mu.Unlock()
			return
		}
		buf = buf[:0]
		if l.helloDue {
			l.helloDue = false
			buf = AppendFrame(buf, Frame{Type: Hello, Session: l.session})
		}
		if l.ackDue {
			l.ackDue = false
			buf = AppendFrame(buf, Frame{Type: Ack, Session: l.session, Payload: binary.BigEndian.AppendUint32(nil, l.nonce)})
		}
		n := 0
		for ; n < len(l.queue) && len(buf) < 4*MaxFrame; n++ {
			o := l.queue[n]
			if o.stream == nil {
				buf = append(buf, o.raw...)
				continue
			}
			s := o.stream
			s.windowQueued = false
			if inc := s.pendingWindow; inc > 0 && s.err == nil && !s.recvEOF && s.session == l.session {
				s.pendingWindow = 0
				s.peerCredit += inc
				buf = AppendFrame(buf, Frame{Type: Window, Session: s.session, Stream: s.id, Payload: binary.BigEndian.AppendUint32(nil, uint32(inc))})
			}
		}
		clear(l.queue[:n])
		l.queue = l.queue[n:]
		l.mu.Unlock()
		if _, err := l.port.Write(buf); err != nil {
			l.log.Info("write to bridge port failed", "error", err)
			l.port.Close()
			return
		}
	}
}

// wakeWriter tells the writer that there is work. Callers hold l.mu.
func (l *Link) wakeWriter() {
	close(l.qChanged)
	l.qChanged = make(chan struct{})
}

// queueRaw queues bytes; session 0 marks bytes that survive a session
// reset. Callers hold l.mu.
func (l *Link) queueRaw(session uint32, raw []byte) {
	l.queue = append(l.queue, outFrame{session: session, raw: raw})
	l.wakeWriter()
}

// queueFrame queues f. Callers hold l.mu.
func (l *Link) queueFrame(f Frame) { l.queueRaw(f.Session, AppendFrame(nil, f)) }

// queueReset queues a Reset of stream id. Callers hold l.mu.
func (l *Link) queueReset(id uint32, r Reason, msg string) {
	if len(msg) > 200 {
		msg = msg[:200]
	}
	l.queueFrame(Frame{Type: Reset, Session: l.session, Stream: id, Payload: append([]byte{byte(r)}, msg...)})
}

// maybeForget drops a stream both of whose directions have finished.
// Callers hold l.mu.
func (l *Link) maybeForget(s *Stream) {
	if s.recvEOF && s.sentFin && l.streams[s.id] == s {
		delete(l.streams, s.id)
	}
}

func (l *Link) newStream(id uint32) *Stream {
	s := &Stream{l: l, session: l.session, id: id, credit: l.opts.Window, peerCredit: l.opts.Window, changed: make(chan struct{})}
	l.streams[id] = s
	return s
}
