package apiclient

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/cli"
)

func (a *app) execCmd() *cobra.Command {
	var tty, noTTY bool
	cmd := &cobra.Command{
		Use:   "exec [-t | -T] CONTAINER [--] COMMAND [ARG...]",
		Short: "Run a command in a host container (admin, control, ...); exit with its exit status",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tty && noTTY {
				return cli.Usagef("-t/--tty and -T/--no-tty exclude each other")
			}
			if len(args) == 0 {
				return cli.Usagef("exec needs a host container and a command")
			}
			target, command := args[0], args[1:]
			if len(command) > 0 && command[0] == "--" {
				command = command[1:]
			}
			if err := api.CheckContainerID(target); err != nil {
				return cli.Usagef("bad host container name: %w", err)
			}
			if len(command) == 0 {
				return cli.Usagef("exec needs a command to run in %s", target)
			}
			mode := ttyAuto
			if tty {
				mode = ttyOn
			} else if noTTY {
				mode = ttyOff
			}
			code, err := a.exec(cmd.Context(), target, command, mode)
			a.exitCode = code
			return err
		},
	}
	// Flags after the container name are the command's.
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "give the command a terminal (default: when standard input and output are terminals)")
	cmd.Flags().BoolVarP(&noTTY, "no-tty", "T", false, "never give the command a terminal")
	return cmd
}

type ttyMode int

const (
	ttyAuto ttyMode = iota
	ttyOn
	ttyOff
)

// exec runs the command and returns its exit status. With a terminal,
// standard input (when it is a terminal) is put in raw mode, so that
// keys like ctrl-c reach the command, and window size changes
// (SIGWINCH) are passed on. SIGINT, SIGTERM and SIGQUIT end the session,
// and the server kills the command; the exit status is then 128 plus
// the signal's number, as upstream's apiclient.
func (a *app) exec(ctx context.Context, target string, command []string, mode ttyMode) (int, error) {
	inFile, _ := a.stdin.(*os.File)
	outFile, _ := a.stdout.(*os.File)
	inTerm := inFile != nil && term.IsTerminal(int(inFile.Fd()))
	outTerm := outFile != nil && term.IsTerminal(int(outFile.Fd()))
	o := ExecOptions{Target: target, Command: command, Stdin: a.stdin, Stdout: a.stdout,
		TTY: mode == ttyOn || (mode == ttyAuto && inTerm && outTerm)}
	sizeOf := func() *api.WindowSize {
		for _, f := range []*os.File{outFile, inFile} {
			if f == nil {
				continue
			}
			if w, h, err := term.GetSize(int(f.Fd())); err == nil && w > 0 && h > 0 {
				return &api.WindowSize{Rows: uint16(h), Cols: uint16(w)}
			}
		}
		return nil
	}
	if o.TTY {
		o.Size = sizeOf()
		if inTerm {
			state, err := term.MakeRaw(int(inFile.Fd()))
			if err != nil {
				return 0, err
			}
			defer term.Restore(int(inFile.Fd()), state)
		}
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGWINCH, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	resize := make(chan api.WindowSize, 1)
	o.Resize = resize
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got syscall.Signal
	stopped := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stopped:
				return
			case sig := <-sigs:
				if sig == syscall.SIGWINCH {
					if size := sizeOf(); o.TTY && size != nil {
						select {
						case resize <- *size:
						default:
						}
					}
					continue
				}
				got = sig.(syscall.Signal)
				cancel()
				return
			}
		}
	}()
	code, err := a.open().Exec(ectx, o)
	if err != nil && ctx.Err() != nil {
		// The signal that cancelled ctx (cmd/apiclient's) reaches the
		// watcher as well.
		select {
		case <-watched:
		case <-time.After(200 * time.Millisecond):
		}
	}
	close(stopped)
	<-watched
	if got != 0 {
		return 128 + int(got), nil
	}
	return code, err
}
