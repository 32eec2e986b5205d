package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/hostexec"
)

// Validator checks a settings patch: the nested object under "settings",
// e.g. {"motd": "hi", "network": {"hostname": "x"}}. Its error message
// (which names the key path) is returned to the client with status 400.
type Validator interface {
	Validate(settings map[string]any) error
}

// Applier renders configuration and restarts services after a commit.
// changedKeys is nil when everything should be applied.
type Applier interface {
	Apply(ctx context.Context, changedKeys []string) error
}

// Rebooter reboots the host.
type Rebooter interface {
	Reboot(ctx context.Context) error
}

// Config holds a Server's dependencies. Store is required.
type Config struct {
	Store     *datastore.Store
	Validator Validator // nil accepts every patch
	Applier   Applier   // nil logs and does nothing
	Rebooter  Rebooter  // nil makes /actions/reboot fail with 500
	OS        api.OSRelease
	Logger    *slog.Logger
	// SocketGID is the group whose members may call the API besides root;
	// negative admits only root.
	SocketGID int
	// MaxBodyBytes caps request bodies (413 above); 0 means api.MaxBodyBytes.
	MaxBodyBytes int64
	// Limits of connections and their timing; zero fields take the
	// defaults of DefaultLimits.
	Limits Limits
	// Updates wires the update routes; nil serves none.
	Updates *UpdateConfig
	// Exec wires GET /exec, commands in host containers (the host
	// containerd's socket, namespace and a FIFO directory); nil serves
	// no such route.
	Exec *hostexec.Config
	// ContainerStatusDir holds host-ctr's status documents; "" serves an
	// empty object.
	ContainerStatusDir string
}

// Limits bound what one client can hold on to: connections, and how long
// a request may take to arrive and its answer to leave.
type Limits struct {
	// MaxConnections caps the connections served at once; further
	// connections wait in the listen queue until one closes.
	MaxConnections int
	// ReadHeaderTimeout and ReadTimeout bound the arrival of a request's
	// headers and of the whole request (408 when a body is cut off).
	ReadHeaderTimeout, ReadTimeout time.Duration
	// WriteTimeout bounds the writing of an answer, counted from the end
	// of the request's headers; for apply requests ApplyTimeout is added.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection without a new request.
	IdleTimeout time.Duration
	// ApplyTimeout bounds one run of the Applier.
	ApplyTimeout time.Duration
}

// DefaultLimits are the limits of the shipped API server.
func DefaultLimits() Limits {
	return Limits{
		MaxConnections:    64,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ApplyTimeout:      5 * time.Minute,
	}
}

// withDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&l.ReadHeaderTimeout, d.ReadHeaderTimeout}, {&l.ReadTimeout, d.ReadTimeout}, {&l.WriteTimeout, d.WriteTimeout},
		{&l.IdleTimeout, d.IdleTimeout}, {&l.ApplyTimeout, d.ApplyTimeout}} {
		if *f.v <= 0 {
			*f.v = f.def
		}
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = d.MaxConnections
	}
	return l
}

// Server serves the settings API. It is safe for concurrent use.
type Server struct {
	cfg  Config
	log  *slog.Logger
	auth authorizer
	mux  *http.ServeMux
	// settingsCache holds the encoded answer to GET /settings for one
	// live version of the datastore.
	settingsCache atomic.Pointer[encodedBody]
	// failures numbers the 5xx answers, to find them in the log.
	failures atomic.Uint64
	// updates is the update state machine; nil without Config.Updates.
	updates *updates
	// exec serves /exec; nil without Config.Exec.
	exec *hostexec.Exec
	// bgCtx is cancelled, and bg waited for, when Serve returns: they own
	// the work that outlives a request (update commands).
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
}

// encodedBody is a response body encoded for one live version.
type encodedBody struct {
	version uint64
	body    encodedJSON
}

// encodedJSON is a response body that is already JSON; handle writes it
// as it is.
type encodedJSON []byte

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Validator == nil {
		cfg.Validator = permissive{}
	}
	if cfg.Applier == nil {
		cfg.Applier = LogApplier{Logger: cfg.Logger}
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = api.MaxBodyBytes
	}
	cfg.Limits = cfg.Limits.withDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, auth: authorizer{gid: cfg.SocketGID, groups: procGroups}, mux: http.NewServeMux()}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	if cfg.Updates != nil {
		s.updates = newUpdates(*cfg.Updates)
	}
	if cfg.Exec != nil {
		s.exec = hostexec.New(*cfg.Exec, cfg.Logger)
	}
	s.routes()
	return s
}

// background runs f in a goroutine that Serve stops (cancelling its
// context) and waits for when it returns.
func (s *Server) background(f func(ctx context.Context)) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f(s.bgCtx)
	}()
}

type permissive struct{}

func (permissive) Validate(map[string]any) error { return nil }

// LogApplier is the default Applier: it only logs the changed keys.
type LogApplier struct{ Logger *slog.Logger }

// Apply logs the keys.
func (a LogApplier) Apply(_ context.Context, keys []string) error {
	a.Logger.Info("apply requested; no applier configured", "keys", keys)
	return nil
}

// CommandApplier runs a thar-be-settings style program: with keys, it runs
// "<Path> --daemon" with the keys as a JSON array on stdin; without, it runs
// "<Path> --daemon --all". With SocketPath, "--socket-path SocketPath" is
// added, so the program reads settings from the server that runs it.
type CommandApplier struct {
	Path       string
	SocketPath string
	// Output receives what the program printed once it has ended
	// (apiserver passes its own stderr, so the applier's lines reach the
	// journal); on failure it is part of the error as well.
	Output io.Writer
}

// Apply runs the command and waits for it.
func (a CommandApplier) Apply(ctx context.Context, keys []string) error {
	args := []string{"--daemon"}
	if a.SocketPath != "" {
		args = append(args, "--socket-path", a.SocketPath)
	}
	if keys == nil {
		args = append(args, "--all")
	}
	cmd := exec.CommandContext(ctx, a.Path, args...)
	if keys != nil {
		in, err := encodeJSON(keys)
		if err != nil {
			return fmt.Errorf("encode changed keys: %w", err)
		}
		cmd.Stdin = bytes.NewReader(in)
	}
	out, err := cmd.CombinedOutput()
	if a.Output != nil {
		a.Output.Write(out)
	}
	if err != nil {
		return fmt.Errorf("run config applier %s: %w: %s", a.Path, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// SystemctlRebooter reboots with "systemctl reboot --no-block
// --check-inhibitors=no". A Petrel host has no D-Bus, so logind cannot be
// asked about inhibitors ("--check-inhibitors=yes" fails with "Failed to
// connect to bus"); with "no", systemctl starts reboot.target through
// systemd's private socket. --no-block returns once the job is queued:
// waiting for it, systemctl would be killed with the API server's unit as
// the shutdown stops it, and the request would fail. Even so systemctl
// may still be in the unit when the shutdown begins; ended by SIGTERM, it
// had queued the reboot, which is success.
type SystemctlRebooter struct{ Path string }

// Reboot runs systemctl.
func (r SystemctlRebooter) Reboot(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, r.Path, "reboot", "--no-block", "--check-inhibitors=no").CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("run %s reboot: %w: %s", r.Path, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Handler returns the HTTP handler, including the peer-credential check.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred, _ := r.Context().Value(credKey{}).(peerCred)
		if err := s.auth.allow(cred); err != nil {
			s.log.Warn("request refused", "method", r.Method, "path", r.URL.Path, "error", err)
			writeError(w, http.StatusForbidden, "Forbidden: "+err.Error())
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

// Listen creates the Unix socket at path, replacing a stale socket, then
// sets its group to gid (if gid >= 0) and its mode to mode.
func Listen(path string, gid int, mode os.FileMode) (*net.UnixListener, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen on %q: exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %q: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", path, err)
	}
	ln.SetUnlinkOnClose(true)
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("set group of socket %q to %d: %w", path, gid, err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("set mode of socket %q: %w", path, err)
	}
	return ln, nil
}

// Serve serves ln until ctx is cancelled, then shuts down gracefully,
// letting requests in flight finish for up to 5 seconds, and stops an
// update command that is still running. At most Limits.MaxConnections
// connections are served at once. With update routes, it first rebuilds
// the update status in the background (restoreUpdates).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	defer s.bg.Wait()
	defer s.bgCancel()
	if s.updates != nil {
		s.background(s.restoreUpdates)
	}
	l := s.cfg.Limits
	hs := &http.Server{
		Handler:           s.Handler(),
		ConnContext:       connContext,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(newLimitListener(ln, l.MaxConnections)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve API: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shut down API server: %w", err)
	}
	return nil
}

// serveExec runs an exec session (sources/hostexec). The session outlives
// the request's deadlines, which are cleared, and belongs to the server's
// background work: a shutdown ends it (the command is killed, the client
// told) and waits for it.
func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if err := errors.Join(rc.SetReadDeadline(time.Time{}), rc.SetWriteDeadline(time.Time{})); err != nil {
		s.writeErr(w, r, fmt.Errorf("clear deadlines of an exec session: %w", err))
		return
	}
	s.bg.Add(1)
	defer s.bg.Done()
	s.exec.Serve(s.bgCtx, w, r)
}

// httpError is an error with the status code it is answered with.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// statusOf maps errors to HTTP status codes at the boundary. A datastore
// limit (keys per write or transaction, pending transactions) is 413, like
// a body that is too large: the request is refused for its size, and the
// message names the limit. A full file system is 507; the store still
// serves reads and deletions. ErrCorrupt and ErrFailed are 500.
func statusOf(err error) int {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.code
	case errors.As(err, &mbe), errors.Is(err, datastore.ErrLimit):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, datastore.ErrNoSpace):
		return http.StatusInsufficientStorage
	case errors.Is(err, datastore.ErrInvalidKey), errors.Is(err, datastore.ErrInvalidTransaction),
		errors.Is(err, datastore.ErrInvalidValue), errors.Is(err, datastore.ErrConflict):
		return http.StatusBadRequest
	case errors.Is(err, datastore.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg)
}

// handle adapts a handler returning (body, error): a nil body is 204,
// otherwise body is JSON-encoded. An error is answered with its status
// (statusOf) and message; for 5xx statuses the message, which may name
// files and programs of the host, goes to the log with a request number and
// the answer is generic.
func (s *Server) handle(h func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := h(r)
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		if body == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		data, ok := body.(encodedJSON)
		if !ok {
			data, err = encodeJSON(body)
		}
		if err != nil {
			s.writeErr(w, r, fmt.Errorf("encode response: %w", err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	}
}

// handleApply is handle for requests that run the Applier: their answer
// may take up to Limits.ApplyTimeout longer.
func (s *Server) handleApply(h func(r *http.Request) (any, error)) http.HandlerFunc {
	inner := s.handle(h)
	return func(w http.ResponseWriter, r *http.Request) {
		l := s.cfg.Limits
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(l.ApplyTimeout + l.WriteTimeout)); err != nil {
			s.log.Warn("extend write deadline of an apply request", "error", err)
		}
		inner(w, r)
	}
}

// writeErr answers err; see handle.
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code < 500 {
		writeError(w, code, err.Error())
		return
	}
	n := s.failures.Add(1)
	s.log.Error("request failed", "request", n, "method", r.Method, "uri", r.URL.RequestURI(), "status", code, "error", err)
	writeError(w, code, fmt.Sprintf("%s: the request failed; the apiserver log has the details (request %d)", http.StatusText(code), n))
}
