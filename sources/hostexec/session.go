package hostexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/petrel-os/petrel/sources/api"
)

// Config is where the host containers are.
type Config struct {
	// Socket is the host containerd's gRPC socket.
	Socket string
	// Namespace is the containerd namespace of the host containers.
	Namespace string
	// FIFODir holds the FIFOs of the commands' standard streams.
	FIFODir string
}

// Defaults of a Petrel host: host-ctr runs the host containers in the
// host containerd's namespace "default" (docs/api.md "Exec").
const (
	DefaultSocket    = "/run/host-containerd/containerd.sock"
	DefaultNamespace = "default"
	DefaultFIFODir   = "/run/petrel/exec"
)

// DefaultConfig returns the configuration of a Petrel host.
func DefaultConfig() Config {
	return Config{Socket: DefaultSocket, Namespace: DefaultNamespace, FIFODir: DefaultFIFODir}
}

// timing are the durations of a session.
type timing struct {
	// init bounds the wait for the Initialize message.
	init time.Duration
	// drain bounds the wait for the rest of the output once the command
	// has exited (a process it left running may hold its output open).
	drain time.Duration
	// ping is the heartbeat interval, pingTimeout how long a ping may go
	// unanswered.
	ping, pingTimeout time.Duration
}

var defaultTiming = timing{init: 30 * time.Second, drain: 2 * time.Second, ping: api.ExecHeartbeatInterval, pingTimeout: api.ExecHeartbeatTimeout}

// Exec serves exec sessions.
type Exec struct {
	cfg    Config
	log    *slog.Logger
	timing timing
}

// New returns an Exec for cfg; log may be nil.
func New(cfg Config, log *slog.Logger) *Exec {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Exec{cfg: cfg, log: log, timing: defaultTiming}
}

// Serve upgrades the request to a WebSocket and runs one session until
// the command ends, the client goes away or ctx is cancelled (the server
// shutting down: the command is killed and the client told with close
// code 1001). The caller must have cleared the connection's deadlines. A
// request that is not a WebSocket upgrade is answered with an HTTP error
// by the WebSocket library (426 or 400).
func (e *Exec) Serve(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		e.log.Warn("exec: WebSocket handshake failed", "error", err)
		return
	}
	conn.SetReadLimit(api.ExecMaxMessageBytes)
	s := &session{
		Exec:  e,
		conn:  conn,
		input: make(chan []byte, api.ExecMaxMessagesOutstanding),
		inits: make(chan api.ExecInit, 1),
		winch: make(chan api.WindowSize, 16),
		end:   make(chan ending, 1),
	}
	s.run(ctx)
}

// ending is why a session ends: the client went away (gone), or the
// session is to be closed with code and reason.
type ending struct {
	gone   bool
	code   websocket.StatusCode
	reason string
	// detail is logged, not sent.
	detail error
}

// session is one exec session. The reader goroutine owns the protocol
// state of the client's messages; run owns the process.
type session struct {
	*Exec
	conn *websocket.Conn
	// input holds the client's input until it is written to the
	// command; the reader closes it at ContentComplete.
	input chan []byte
	inits chan api.ExecInit
	winch chan api.WindowSize
	// end holds the first ending reported.
	end chan ending
}

// finish reports an ending; the first one wins.
func (s *session) finish(e ending) {
	select {
	case s.end <- e:
	default:
	}
}

func (s *session) run(parent context.Context) {
	// The WebSocket's own context is cancelled only once the session has
	// ended: cancelling a read or write closes the connection at once,
	// before a Close frame could tell the client why.
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	if err := s.conn.Write(ctx, websocket.MessageText, api.ExecCapacity{MaxMessagesOutstanding: api.ExecMaxMessagesOutstanding}.Encode()); err != nil {
		s.log.Info("exec client went away", "error", err)
		s.conn.CloseNow()
		return
	}
	wg.Go(func() { s.read(ctx) })
	wg.Go(func() { s.heartbeat(ctx) })

	var init api.ExecInit
	timer := time.NewTimer(s.timing.init)
	defer timer.Stop()
	select {
	case init = <-s.inits:
	case e := <-s.end:
		s.close(e)
		return
	case <-timer.C:
		s.close(ending{code: api.ExecClosePolicy, reason: fmt.Sprintf("no Initialize message within %s", s.timing.init)})
		return
	case <-parent.Done():
		s.close(ending{code: api.ExecCloseGoingAway, reason: "API server shutting down"})
		return
	}
	log := s.log.With("target", init.Target, "tty", init.TTY != nil)
	p, err := s.cfg.start(ctx, init)
	if err != nil {
		s.close(ending{code: api.ExecCloseError, reason: startReason(init.Target, err), detail: err})
		return
	}
	log = log.With("exec_id", p.id)
	log.Info("exec started", "command", init.Command)
	exited := false
	defer func() { p.stop(log, exited) }()

	wg.Go(func() { s.writeInput(ctx, log, p) })
	wg.Go(func() {
		for {
			select {
			case size := <-s.winch:
				if err := p.resize(ctx, size); err != nil {
					log.Debug("resize", "error", err)
				}
			case <-ctx.Done():
				return
			}
		}
	})
	var outputs sync.WaitGroup
	var lastOutput atomic.Int64
	lastOutput.Store(time.Now().UnixNano())
	for _, r := range p.outputs() {
		outputs.Add(1)
		wg.Go(func() {
			defer outputs.Done()
			s.copyOutput(ctx, r, &lastOutput)
		})
	}
	select {
	case st := <-p.exit:
		exited = true
		code, _, err := st.Result()
		if err != nil {
			s.close(ending{code: api.ExecCloseError, reason: "waiting for the command failed", detail: err})
			return
		}
		s.drain(ctx, log, &outputs, &lastOutput)
		log.Info("exec ended", "exit_status", code)
		s.close(ending{code: api.ExecCloseNormal, reason: strconv.FormatUint(uint64(code), 10)})
	case e := <-s.end:
		s.close(e)
	case <-parent.Done():
		s.close(ending{code: api.ExecCloseGoingAway, reason: "API server shutting down"})
	}
}

// drain waits, once the command has exited, until its output has all
// been sent: until the output streams end, or no output has been sent for
// the drain time (a process the command left running holds them open).
func (s *session) drain(ctx context.Context, log *slog.Logger, outputs *sync.WaitGroup, last *atomic.Int64) {
	done := make(chan struct{})
	go func() {
		outputs.Wait()
		close(done)
	}()
	tick := time.NewTicker(s.timing.drain / 10)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
			if time.Since(time.Unix(0, last.Load())) > s.timing.drain {
				log.Info("exec output still open after the command exited; closing it")
				return
			}
		}
	}
}

// close ends the WebSocket as e says and logs why.
func (s *session) close(e ending) {
	if e.gone {
		s.log.Info("exec client went away", "error", e.detail)
		s.conn.CloseNow()
		return
	}
	if e.code != api.ExecCloseNormal {
		s.log.Warn("exec session closed", "code", int(e.code), "reason", e.reason, "error", e.detail)
	}
	if err := s.conn.Close(e.code, closeReason(e.reason)); err != nil {
		s.log.Debug("close exec WebSocket", "error", err)
	}
}

// startReason is the close reason for a command that could not start.
func startReason(target string, err error) string {
	switch {
	case errors.Is(err, ErrNoContainer):
		return fmt.Sprintf("host container %q does not exist", target)
	case errors.Is(err, ErrNotRunning):
		return fmt.Sprintf("host container %q is not running", target)
	case errors.Is(err, ErrUnavailable):
		return "host containerd unavailable"
	}
	return err.Error()
}

// closeReason fits s into a Close frame's 123 bytes, keeping its end,
// where the innermost and most telling error is.
func closeReason(s string) string {
	const max = 123
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := len(s) - (max - len(ellipsis))
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}
	return ellipsis + s[cut:]
}

// read reads the client's messages until the connection ends: the first
// text message must be Initialize; binary messages after it are the
// command's input, queued; ContentComplete closes the input; Winch
// resizes the terminal.
func (s *session) read(ctx context.Context) {
	initialized, inputClosed := false, false
	defer func() {
		if !inputClosed {
			close(s.input)
		}
	}()
	for {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			s.finish(ending{gone: true, detail: err})
			return
		}
		if typ == websocket.MessageBinary {
			switch {
			case !initialized:
				s.finish(ending{code: api.ExecClosePolicy, reason: "process data sent before initialization"})
			case inputClosed:
				// Input after ContentComplete is dropped, as upstream.
			default:
				select {
				case s.input <- data:
				default:
					s.finish(ending{code: api.ExecCloseSize, reason: "write buffer full; obey capacity updates"})
				}
			}
			continue
		}
		m, err := api.ParseExecClientMessage(data)
		if err != nil {
			s.finish(ending{code: api.ExecCloseInvalid, reason: "invalid client message: " + err.Error()})
			continue
		}
		switch m.Kind {
		case api.ExecInitialize:
			if initialized {
				s.finish(ending{code: api.ExecClosePolicy, reason: "second Initialize message"})
				continue
			}
			initialized = true
			s.inits <- *m.Init
		case api.ExecContentComplete:
			if !initialized {
				s.finish(ending{code: api.ExecClosePolicy, reason: "ContentComplete sent before initialization"})
			} else if !inputClosed {
				inputClosed = true
				close(s.input)
			}
		case api.ExecWinch:
			select {
			case s.winch <- *m.Size:
			default:
			}
		}
	}
}

// heartbeat pings the client; a ping unanswered for the timeout ends the
// session.
func (s *session) heartbeat(ctx context.Context) {
	if err := api.ExecHeartbeat(ctx, s.conn.Ping, s.timing.ping, s.timing.pingTimeout); err != nil {
		s.finish(ending{gone: true, detail: fmt.Errorf("client %w", err)})
	}
}

// writeInput writes the queued input to the command and reports the
// capacity every api.ExecCapacityInterval messages. Once a write fails
// (the command closed its input) the rest is counted and dropped, so the
// client is not held up. At the end of the input it closes the
// command's.
func (s *session) writeInput(ctx context.Context, log *slog.Logger, p *process) {
	var written uint64
	var failed error
	for {
		var data []byte
		var ok bool
		select {
		case data, ok = <-s.input:
		case <-ctx.Done():
			return
		}
		if !ok {
			if err := p.closeStdin(ctx); err != nil && ctx.Err() == nil {
				log.Debug("close input", "error", err)
			}
			return
		}
		if failed == nil {
			if _, failed = p.stdin().Write(data); failed != nil {
				log.Debug("write input; dropping the rest", "error", failed)
			}
		}
		written++
		if written%api.ExecCapacityInterval == 0 {
			c := api.ExecCapacity{MaxMessagesOutstanding: api.ExecMaxMessagesOutstanding, MessagesWritten: written}
			if err := s.conn.Write(ctx, websocket.MessageText, c.Encode()); err != nil {
				return
			}
		}
	}
}

// copyOutput sends what r yields to the client as binary messages until
// r ends or the client cannot be written to; last is the time of the
// last message sent.
func (s *session) copyOutput(ctx context.Context, r io.Reader, last *atomic.Int64) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := s.conn.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
				return
			}
			last.Store(time.Now().UnixNano())
		}
		if err != nil {
			return
		}
	}
}
