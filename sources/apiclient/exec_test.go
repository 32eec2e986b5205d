package apiclient_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/apiserver"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/sources/testkit/containerdtest"
)

// execHost is a host for the exec tests: a real containerd with the host
// container "admin" running and "stopped" created but not started, and
// an API server wired as Main wires it (Options.Config), but for the
// host containerd's socket and the FIFO directory, which are temporary.
type execHost struct {
	socket string // the API socket
	ctrd   *containerdtest.Daemon
	log    *bytes.Buffer
}

func startExecHost(t *testing.T) *execHost {
	t.Helper()
	d := containerdtest.Start(t, containerdtest.Tools{Containerd: testkit.Tool(t, "containerd"), Runc: testkit.Tool(t, "runc"),
		Busybox: testkit.Tool(t, "/bin/busybox")})
	d.Run(t, "admin")
	d.Create(t, "stopped")
	h := &execHost{ctrd: d, log: &bytes.Buffer{}}
	fifoDir := filepath.Join(t.TempDir(), "fifo")
	// Registered before serve's cleanup, so run after it: once the
	// server has stopped and its sessions have ended.
	t.Cleanup(func() {
		if left, _ := os.ReadDir(fifoDir); len(left) > 0 {
			t.Errorf("FIFO directories left behind: %d", len(left))
		}
		if t.Failed() {
			t.Logf("apiserver log:\n%s", h.log)
		}
	})
	h.socket = serve(t, func(sock string, store *datastore.Store) apiserver.Config {
		o := apiserver.DefaultOptions()
		o.SocketPath, o.SocketGID, o.Applier = sock, -1, ""
		o.ExecSocketPath, o.ExecFIFODir = d.Socket, fifoDir
		cfg, err := o.Config(store, slog.New(slog.NewTextHandler(&lockedWriter{w: h.log}, nil)), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Updates = nil
		return cfg
	})
	return h
}

// lockedWriter serialises the writes of the server's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestExec runs apiclient exec through a real API server in a real
// host containerd: exit statuses, input, output, terminals and errors.
func TestExec(t *testing.T) {
	h := startExecHost(t)
	big := make([]byte, 6<<20) // 1536 input messages: more than the server holds at once
	rand.Read(big)
	for _, tt := range []struct {
		name   string
		stdin  string
		args   []string
		code   int
		out    string // exact output, unless outHas
		outHas []string
		errHas string
	}{
		{name: "exit status", args: []string{"admin", "--", "sh", "-c", "exit 7"}, code: 7},
		{name: "no --", args: []string{"admin", "sh", "-c", "echo $0 $1", "x", "-y"}, out: "x -y\n"},
		{name: "input", stdin: "hello\nworld\n", args: []string{"admin", "--", "sh", "-c", "cat; echo done"}, out: "hello\nworld\ndone\n"},
		{name: "input, capacity", stdin: string(big), args: []string{"admin", "--", "sha256sum"},
			out: fmt.Sprintf("%x  -\n", sha256.Sum256(big))},
		{name: "stdout and stderr", args: []string{"admin", "--", "sh", "-c", "echo out; echo err >&2; exit 3"}, code: 3, outHas: []string{"out\n", "err\n"}},
		{name: "command killed", args: []string{"admin", "--", "sh", "-c", "kill -9 $$"}, code: 137},
		{name: "no terminal", args: []string{"admin", "--", "tty"}, code: 1, out: "not a tty\n"},
		{name: "terminal forced", args: []string{"-t", "admin", "--", "sh", "-c", "tty; echo $TERM"}, outHas: []string{"/dev/pts/", "xterm"}},
		{name: "terminal refused", args: []string{"-T", "admin", "--", "tty"}, code: 1, out: "not a tty\n"},
		{name: "missing container", args: []string{"nosuch", "--", "true"}, code: 1, errHas: `apiclient: host container "nosuch" does not exist`},
		{name: "container not running", args: []string{"stopped", "--", "true"}, code: 1, errHas: `apiclient: host container "stopped" is not running`},
		{name: "missing program", args: []string{"admin", "--", "/bin/nosuch"}, code: 1, errHas: "nosuch"},
		{name: "no command", args: []string{"admin", "--"}, code: 2, errHas: "exec needs a command to run in admin"},
		{name: "bad name", args: []string{"../x", "true"}, code: 2, errHas: `bad host container name: "../x" is not a container name`},
		{name: "both terminal flags", args: []string{"-t", "-T", "admin", "true"}, code: 2, errHas: "exclude each other"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := apiclient.Run(context.Background(), append([]string{"--socket-path", h.socket, "exec"}, tt.args...), strings.NewReader(tt.stdin), &out, &errb)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, errb.String())
			}
			if tt.outHas == nil && out.String() != tt.out {
				t.Errorf("output %q, want %q", out.String(), tt.out)
			}
			for _, s := range tt.outHas {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output %q lacks %q", out.String(), s)
				}
			}
			if tt.errHas == "" && errb.Len() > 0 || !strings.Contains(errb.String(), tt.errHas) {
				t.Errorf("stderr %q, want %q", errb.String(), tt.errHas)
			}
		})
	}
}

// buildAPIClient builds cmd/apiclient, the program tests run under a
// terminal and interrupt.
func buildAPIClient(t *testing.T) string {
	t.Helper()
	return testkit.GoBuild(t, "github.com/petrel-os/petrel/cmd/apiclient", filepath.Join(t.TempDir(), "apiclient"))
}

// output collects what a reader yields, for a test to wait for text.
type output struct {
	mu   sync.Mutex
	b    bytes.Buffer
	more chan struct{}
}

func collect(r io.Reader) *output {
	o := &output{more: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			o.mu.Lock()
			o.b.Write(buf[:n])
			o.mu.Unlock()
			select {
			case o.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return o
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// waitFor waits until the output holds s, poking (when not nil) every
// 200 ms meanwhile.
func (o *output) waitFor(t *testing.T, s string, poke func()) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(o.String(), s) {
		select {
		case <-o.more:
		case <-tick.C:
			if poke != nil {
				poke()
			}
		case <-deadline:
			t.Fatalf("output %q lacks %q after 20 s", o.String(), s)
		}
	}
}

// openPTY returns a new pseudo-terminal's master and slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

func setSize(t *testing.T, f *os.File, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatalf("set window size: %v", err)
	}
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// TestExecTerminal runs apiclient under a terminal, as a user does: the
// terminal is detected, its size reaches the command (stty size), a
// change of size follows (SIGWINCH), and ctrl-c, a byte in raw mode,
// interrupts the command through its own terminal (exit 130).
func TestExecTerminal(t *testing.T) {
	h := startExecHost(t)
	bin := buildAPIClient(t)
	master, slave := openPTY(t)
	setSize(t, slave, 33, 111)
	cmd := exec.Command(bin, "--socket-path", h.socket, "exec", "admin", "--", "sh", "-c", "stty size; while read x; do stty size; done")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	out := collect(master)
	out.waitFor(t, "33 111", nil)
	setSize(t, master, 40, 120)
	out.waitFor(t, "40 120", func() { master.Write([]byte("\r")) })
	master.Write([]byte{3})
	if code := exitCode(t, cmd.Wait()); code != 130 {
		t.Errorf("exit %d after ctrl-c, want 130 (SIGINT); output %q", code, out.String())
	}
}

// TestExecInterrupted interrupts apiclient without a terminal: it exits
// with 128 plus the signal's number, and the command it ran is killed.
func TestExecInterrupted(t *testing.T) {
	h := startExecHost(t)
	bin := buildAPIClient(t)
	c, err := h.ctrd.Client().LoadContainer(context.Background(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pids := func() int {
		ps, err := task.Pids(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(ps)
	}
	for _, tt := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		t.Run(tt.sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "--socket-path", h.socket, "exec", "admin", "--", "sh", "-c", "echo started; exec sleep 999")
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			pr, pw := io.Pipe()
			cmd.Stdout, cmd.Stderr = pw, pw
			out := collect(pr)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			out.waitFor(t, "started", nil)
			if n := pids(); n != 2 {
				t.Fatalf("%d processes in the container, want its own and the command", n)
			}
			cmd.Process.Signal(tt.sig)
			if code := exitCode(t, cmd.Wait()); code != tt.code {
				t.Errorf("exit %d, want %d; output %q", code, tt.code, out.String())
			}
			pw.Close()
			deadline := time.Now().Add(10 * time.Second)
			for pids() != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("the command still runs 10 s after apiclient was interrupted")
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// TestExecProtocol speaks the protocol on a WebSocket of its own:
// upstream's messages byte for byte, and each way of breaking the
// protocol with its close code and the reason naming the problem.
func TestExecProtocol(t *testing.T) {
	h := startExecHost(t)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", h.socket)
	}}}
	ctx := context.Background()
	dial := func(t *testing.T) *websocket.Conn {
		t.Helper()
		c, _, err := websocket.Dial(ctx, "ws://localhost/exec", &websocket.DialOptions{HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		typ, msg, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageText || string(msg) != `{"Capacity":{"max_messages_outstanding":1024,"messages_written":0}}` {
			t.Fatalf("first message %v %s, %v; want the initial Capacity", typ, msg, err)
		}
		return c
	}
	closed := func(t *testing.T, c *websocket.Conn) (websocket.CloseError, string) {
		t.Helper()
		var out bytes.Buffer
		for {
			typ, msg, err := c.Read(ctx)
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce, out.String()
			}
			if err != nil {
				t.Fatalf("read: %v, want a Close", err)
			}
			if typ == websocket.MessageBinary {
				out.Write(msg)
			}
		}
	}
	text := func(t *testing.T, c *websocket.Conn, msg string) {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("upstream messages", func(t *testing.T) {
		c := dial(t)
		// sh -c 'cat; exit 5', as upstream's apiclient encodes it.
		text(t, c, `{"Initialize":{"command":[{"Unix":[115,104]},{"Unix":[45,99]},{"Unix":[99,97,116,59,32,101,120,105,116,32,53]}],"target":"admin","tty":null}}`)
		c.Write(ctx, websocket.MessageBinary, []byte("ping\n"))
		text(t, c, `"ContentComplete"`)
		ce, out := closed(t, c)
		if ce.Code != websocket.StatusNormalClosure || ce.Reason != "5" || out != "ping\n" {
			t.Errorf("close %d %q, output %q; want 1000 \"5\" and the input back", ce.Code, ce.Reason, out)
		}
	})
	for _, tt := range []struct {
		name   string
		send   func(t *testing.T, c *websocket.Conn)
		code   websocket.StatusCode
		reason string
	}{
		{"bad Initialize", func(t *testing.T, c *websocket.Conn) {
			text(t, c, `{"Initialize":{"command":["sh"],"tty":{"size":{}}}}`)
		},
			1007, "invalid client message: Initialize.target: missing\nInitialize.tty.size.rows: missing\nInitialize.tty.size.cols: missing"},
		{"not JSON", func(t *testing.T, c *websocket.Conn) { text(t, c, `{`) }, 1007, "invalid client message: control message is not JSON: unexpected end of JSON input"},
		{"input first", func(t *testing.T, c *websocket.Conn) { c.Write(ctx, websocket.MessageBinary, []byte("x")) },
			1008, "process data sent before initialization"},
		{"ContentComplete first", func(t *testing.T, c *websocket.Conn) { text(t, c, `"ContentComplete"`) },
			1008, "ContentComplete sent before initialization"},
		{"second Initialize", func(t *testing.T, c *websocket.Conn) {
			text(t, c, `{"Initialize":{"command":["sleep","60"],"target":"admin","tty":null}}`)
			text(t, c, `{"Initialize":{"command":["sleep","60"],"target":"admin","tty":null}}`)
		}, 1008, "second Initialize message"},
		{"capacity ignored", func(t *testing.T, c *websocket.Conn) {
			text(t, c, `{"Initialize":{"command":["sleep","60"],"target":"admin","tty":null}}`)
			chunk := make([]byte, 32<<10)
			for range api.ExecMaxMessagesOutstanding + 64 {
				if c.Write(ctx, websocket.MessageBinary, chunk) != nil {
					return
				}
			}
		}, 1009, "write buffer full; obey capacity updates"},
		{"missing container", func(t *testing.T, c *websocket.Conn) {
			text(t, c, `{"Initialize":{"command":["true"],"target":"nosuch","tty":null}}`)
		}, 1011, `host container "nosuch" does not exist`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t)
			tt.send(t, c)
			ce, _ := closed(t, c)
			if ce.Code != tt.code || ce.Reason != tt.reason {
				t.Errorf("close %d %q, want %d %q", ce.Code, ce.Reason, tt.code, tt.reason)
			}
		})
	}
	t.Run("not a WebSocket", func(t *testing.T) {
		resp, err := hc.Get("http://localhost/exec")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired {
			t.Errorf("status %d, want 426", resp.StatusCode)
		}
	})
}
