package apiclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/petrel-os/petrel/sources/api"
)

// ExecOptions say what Exec runs and where its input and output go.
type ExecOptions struct {
	// Target is the host container; Command the program and arguments.
	Target  string
	Command []string
	// TTY asks for a terminal, of Size when not nil.
	TTY  bool
	Size *api.WindowSize
	// Stdin is the command's input; at its end the server closes the
	// command's. Nil is no input. Exec does not wait for a Read of Stdin
	// that is in progress when the session ends.
	Stdin io.Reader
	// Stdout receives the command's output (standard output and standard
	// error together, or the terminal).
	Stdout io.Writer
	// Resize delivers new terminal sizes; nil when there are none.
	Resize <-chan api.WindowSize
}

// ExecError is a session that the server ended without an exit status:
// the command could not run (no such host container, not running) or a
// side broke the protocol. Code is the WebSocket close code.
type ExecError struct {
	Code   int
	Reason string
}

func (e *ExecError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("exec session closed with code %d", e.Code)
	}
	return e.Reason
}

// Exec runs a command in a host container through the API's /exec
// WebSocket (upstream's protocol, docs/api.md "Exec") and returns its
// exit status. When ctx is cancelled the session is closed (the server
// then kills the command) and ctx's error returned.
func (c *Client) Exec(ctx context.Context, o ExecOptions) (int, error) {
	init := api.ExecClientMessage{Kind: api.ExecInitialize, Init: &api.ExecInit{Command: o.Command, Target: o.Target}}
	if o.TTY {
		init.Init.TTY = &api.ExecTTY{Size: o.Size}
	}
	initMsg, err := init.Encode()
	if err != nil {
		return 0, err
	}
	// The WebSocket's context outlives ctx so that a Close frame can
	// still tell the server why the session ends.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	conn, _, err := websocket.Dial(dctx, "ws://localhost"+api.PathExec, &websocket.DialOptions{HTTPClient: c.http, CompressionMode: websocket.CompressionDisabled})
	dcancel()
	if err != nil {
		return 0, fmt.Errorf("open exec session on socket %s: %w", c.socket, err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	if err := conn.Write(wctx, websocket.MessageText, initMsg); err != nil {
		return 0, fmt.Errorf("send Initialize: %w", err)
	}
	s := &execSession{conn: conn, capacity: make(chan struct{}, 1), done: make(chan execResult, 1)}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { s.read(wctx, o.Stdout) })
	wg.Go(func() { s.heartbeat(wctx) })
	if o.Resize != nil {
		wg.Go(func() { s.resize(wctx, o.Resize) })
	}
	// The input goroutine may sit in a Read of o.Stdin that nothing can
	// interrupt; it ends at that Read's return.
	go s.writeInput(wctx, o.Stdin)
	select {
	case r := <-s.done:
		return r.code, r.err
	case <-ctx.Done():
		conn.Close(api.ExecCloseGoingAway, "client interrupted")
		return 0, ctx.Err()
	}
}

// execResult is how a session ended.
type execResult struct {
	code int
	err  error
}

// execSession is the client side of one session.
type execSession struct {
	conn *websocket.Conn
	// max and written are the server's last Capacity; capacity is
	// signalled when it changes.
	max, written atomic.Uint64
	capacity     chan struct{}
	done         chan execResult
}

func (s *execSession) finish(r execResult) {
	select {
	case s.done <- r:
	default:
	}
}

// read writes the output to out and follows the Capacity messages until
// the server closes the session.
func (s *execSession) read(ctx context.Context, out io.Writer) {
	for {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			s.finish(closeResult(err))
			return
		}
		if typ == websocket.MessageBinary {
			if out != nil {
				if _, err := out.Write(data); err != nil {
					s.finish(execResult{err: fmt.Errorf("write output: %w", err)})
					return
				}
			}
			continue
		}
		c, err := api.ParseExecServerMessage(data)
		if err != nil {
			s.finish(execResult{err: err})
			return
		}
		s.max.Store(c.MaxMessagesOutstanding)
		s.written.Store(c.MessagesWritten)
		select {
		case s.capacity <- struct{}{}:
		default:
		}
	}
}

// closeResult turns the end of the connection into the exit status (the
// reason of a normal Close) or an error.
func closeResult(err error) execResult {
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		return execResult{err: fmt.Errorf("exec session ended without an exit status: %w", err)}
	}
	if ce.Code != api.ExecCloseNormal {
		return execResult{err: &ExecError{Code: int(ce.Code), Reason: ce.Reason}}
	}
	code, perr := strconv.ParseUint(ce.Reason, 10, 8)
	if perr != nil {
		return execResult{err: fmt.Errorf("exec session closed without an exit status (reason %q)", ce.Reason)}
	}
	return execResult{code: int(code)}
}

// heartbeat pings the server; one unanswered for api.ExecHeartbeatTimeout
// ends the session.
func (s *execSession) heartbeat(ctx context.Context) {
	if err := api.ExecHeartbeat(ctx, s.conn.Ping, api.ExecHeartbeatInterval, api.ExecHeartbeatTimeout); err != nil {
		s.finish(execResult{err: fmt.Errorf("server %w", err)})
	}
}

// writeInput sends in as binary messages, within the server's capacity,
// then ContentComplete.
func (s *execSession) writeInput(ctx context.Context, in io.Reader) {
	var sent uint64
	if in != nil {
		buf := make([]byte, api.ExecInputChunk)
		for {
			n, err := in.Read(buf)
			if n > 0 {
				for int64(sent)-int64(s.written.Load()) >= int64(s.max.Load()) {
					select {
					case <-s.capacity:
					case <-ctx.Done():
						return
					}
				}
				if werr := s.conn.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
					return
				}
				sent++
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				s.finish(execResult{err: fmt.Errorf("read standard input: %w", err)})
				return
			}
		}
	}
	msg, _ := api.ExecClientMessage{Kind: api.ExecContentComplete}.Encode()
	s.conn.Write(ctx, websocket.MessageText, msg)
}

// resize sends each new terminal size.
func (s *execSession) resize(ctx context.Context, sizes <-chan api.WindowSize) {
	for {
		select {
		case <-ctx.Done():
			return
		case size := <-sizes:
			msg, err := api.ExecClientMessage{Kind: api.ExecWinch, Size: &size}.Encode()
			if err == nil {
				s.conn.Write(ctx, websocket.MessageText, msg)
			}
		}
	}
}
