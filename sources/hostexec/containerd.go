package hostexec

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/petrel-os/petrel/sources/api"
)

// Errors of starting a command, for the caller to branch on.
var (
	// ErrNoContainer: the host containerd has no container of that name.
	ErrNoContainer = errors.New("no such host container")
	// ErrNotRunning: the container exists but its task does not run.
	ErrNotRunning = errors.New("host container not running")
	// ErrUnavailable: the host containerd does not answer.
	ErrUnavailable = errors.New("host containerd unavailable")
)

// process is a command exec'd in a host container's task, with its
// standard streams on FIFOs that this process reads and writes itself.
type process struct {
	id     string
	client *containerd.Client
	proc   containerd.Process
	io     *cio.DirectIO
	exit   <-chan containerd.ExitStatus
	tty    bool
}

// start runs init's command in the task of the container init.Target,
// with the container's process settings (user, environment, working
// directory, capabilities) and a terminal when init asks for one. ctx
// bounds the whole life of the process: when it ends, the wait for the
// exit status ends too.
func (c Config) start(ctx context.Context, init api.ExecInit) (_ *process, err error) {
	client, err := containerd.New(c.Socket, containerd.WithDefaultNamespace(c.Namespace), containerd.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("%w: connect to %s: %w", ErrUnavailable, c.Socket, err)
	}
	defer func() {
		if err != nil {
			client.Close()
		}
	}()
	ctr, err := client.LoadContainer(ctx, init.Target)
	switch {
	case errdefs.IsNotFound(err):
		return nil, fmt.Errorf("%w: %q", ErrNoContainer, init.Target)
	case errdefs.IsUnavailable(err):
		return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, c.Socket, err)
	case err != nil:
		return nil, fmt.Errorf("load host container %q: %w", init.Target, err)
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("%w: %q has no task", ErrNotRunning, init.Target)
	} else if err != nil {
		return nil, fmt.Errorf("load task of host container %q: %w", init.Target, err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("read status of host container %q: %w", init.Target, err)
	}
	if st.Status != containerd.Running {
		return nil, fmt.Errorf("%w: %q is %s", ErrNotRunning, init.Target, st.Status)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("read spec of host container %q: %w", init.Target, err)
	}
	if spec.Process == nil {
		return nil, fmt.Errorf("host container %q has no process settings", init.Target)
	}
	pspec := processSpec(*spec.Process, init)
	id := execID()
	fifos, err := cio.NewFIFOSetInDir(c.FIFODir, id, pspec.Terminal)
	if err != nil {
		return nil, fmt.Errorf("create FIFOs in %s: %w", c.FIFODir, err)
	}
	dio, err := cio.NewDirectIO(ctx, fifos)
	if err != nil {
		return nil, fmt.Errorf("open FIFOs of %s: %w", id, err)
	}
	proc, err := task.Exec(ctx, id, &pspec, func(string) (cio.IO, error) { return dio, nil })
	if err != nil {
		dio.Cancel()
		dio.Close()
		return nil, fmt.Errorf("exec in host container %q: %w", init.Target, err)
	}
	exit, err := proc.Wait(ctx)
	if err == nil {
		err = proc.Start(ctx)
	}
	if err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		proc.Delete(dctx)
		return nil, fmt.Errorf("start %q in host container %q: %w", init.Command[0], init.Target, err)
	}
	if init.TTY != nil && init.TTY.Size != nil {
		// The runtime sets the size given in the spec before the command
		// starts; this is for runtimes that do not.
		proc.Resize(ctx, uint32(init.TTY.Size.Cols), uint32(init.TTY.Size.Rows))
	}
	return &process{id: id, client: client, proc: proc, io: dio, exit: exit, tty: pspec.Terminal}, nil
}

// processSpec is the container's process settings with init's command
// and terminal. A terminal gets TERM=xterm unless the container sets
// TERM.
func processSpec(p specs.Process, init api.ExecInit) specs.Process {
	p.Args = init.Command
	p.Terminal = init.TTY != nil
	p.ConsoleSize = nil
	p.Env = append([]string(nil), p.Env...)
	if init.TTY != nil {
		if s := init.TTY.Size; s != nil {
			p.ConsoleSize = &specs.Box{Height: uint(s.Rows), Width: uint(s.Cols)}
		}
		hasTerm := false
		for _, e := range p.Env {
			hasTerm = hasTerm || strings.HasPrefix(e, "TERM=")
		}
		if !hasTerm {
			p.Env = append(p.Env, "TERM=xterm")
		}
	}
	return p
}

// execID returns upstream's exec ID form, apiexec-<16 letters or digits>.
func execID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 16)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "apiexec-" + string(b)
}

// stdin is the command's standard input.
func (p *process) stdin() io.Writer { return p.io.Stdin }

// outputs are the command's output streams: the terminal, or standard
// output and standard error.
func (p *process) outputs() []io.Reader {
	out := []io.Reader{p.io.Stdout}
	if p.io.Stderr != nil {
		out = append(out, p.io.Stderr)
	}
	return out
}

// closeStdin ends the command's input: this side of the FIFO, and the
// runtime's side, which it keeps open until told. A terminal stays open:
// the runtime would hang it up (SIGHUP) at the end of its input, where
// upstream's terminal stays open until the command exits; a terminal's
// end of input is a key (ctrl-d), not the end of the stream.
func (p *process) closeStdin(ctx context.Context) error {
	if p.tty {
		return nil
	}
	p.io.Stdin.Close()
	if err := p.proc.CloseIO(ctx, containerd.WithStdinCloser); err != nil {
		return fmt.Errorf("close standard input of %s: %w", p.id, err)
	}
	return nil
}

// resize sets the terminal's size.
func (p *process) resize(ctx context.Context, size api.WindowSize) error {
	if err := p.proc.Resize(ctx, uint32(size.Cols), uint32(size.Rows)); err != nil {
		return fmt.Errorf("resize terminal of %s: %w", p.id, err)
	}
	return nil
}

// stop kills the command if it still runs, waits for its exit (bounded)
// and deletes it, which closes and removes its FIFOs, and closes the
// client. exited tells whether its exit status was received already.
func (p *process) stop(log *slog.Logger, exited bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !exited {
		if err := p.proc.Kill(ctx, syscall.SIGKILL); err != nil && !errdefs.IsNotFound(err) {
			log.Warn("kill exec'd process", "exec_id", p.id, "error", err)
		}
		select {
		case <-p.exit:
		case <-ctx.Done():
			log.Warn("exec'd process did not exit after SIGKILL", "exec_id", p.id)
		}
	}
	if _, err := p.proc.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		log.Warn("delete exec'd process", "exec_id", p.id, "error", err)
		p.io.Cancel()
		p.io.Close()
	}
	p.client.Close()
}
