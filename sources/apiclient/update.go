package apiclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/cli"
)

// Poll is how long an update action is waited for: Attempts reads of the
// status document, Interval apart.
type Poll struct {
	Interval time.Duration
	Attempts int
}

// Wait is the longest the poll waits.
func (p Poll) Wait() time.Duration { return p.Interval * time.Duration(p.Attempts) }

// DefaultPoll is upstream apiclient's wait for each update command:
// refresh 100 ms × 100 (10 s), prepare 500 ms × 1200 (10 min), activate
// and deactivate 100 ms × 50 (5 s).
func DefaultPoll(cmd api.UpdateCommand) Poll {
	switch cmd {
	case api.UpdatePrepare:
		return Poll{Interval: 500 * time.Millisecond, Attempts: 1200}
	case api.UpdateRefresh:
		return Poll{Interval: 100 * time.Millisecond, Attempts: 100}
	}
	return Poll{Interval: 100 * time.Millisecond, Attempts: 50}
}

// maxStatusFailures is how many failed reads of the status document a
// poll tolerates (the server may be busy), not counting 423s.
const maxStatusFailures = 5

// ErrUpdateFailed is matched by an *UpdateError.
var ErrUpdateFailed = errors.New("update command failed")

// UpdateError is an update command that the server ran and that failed.
type UpdateError struct {
	Command api.UpdateCommand
	Result  api.CommandResult
}

func (e *UpdateError) Error() string {
	msg := fmt.Sprintf("update %s failed (updater exit status %d)", e.Command, e.Result.ExitStatus)
	if s := strings.TrimSpace(e.Result.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// Is matches ErrUpdateFailed.
func (e *UpdateError) Is(target error) bool { return target == ErrUpdateFailed }

// UpdateStatus returns the update status document; an uninitialized one
// is a *StatusError with code 404.
func (c *Client) UpdateStatus(ctx context.Context) (*api.UpdateStatus, error) {
	var st api.UpdateStatus
	if err := c.doJSON(ctx, http.MethodGet, api.PathUpdateStatus, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Update starts an update command and waits, as poll says, until the
// status document shows it ended: a command of its type with a timestamp
// other than the one before. It returns that document, or an
// *UpdateError when the command failed. The server refusing the command
// (423 busy, 409 not allowed in this state, 404 nothing to do) is a
// *StatusError.
func (c *Client) Update(ctx context.Context, cmd api.UpdateCommand, poll Poll) (*api.UpdateStatus, error) {
	before, err := c.UpdateStatus(ctx)
	var se *StatusError
	switch {
	case errors.As(err, &se) && se.Code == http.StatusNotFound:
		before = nil // uninitialized: the first command initializes it
	case err != nil:
		return nil, err
	}
	if err := c.doJSON(ctx, http.MethodPost, cmd.Path(), nil, nil); err != nil {
		return nil, err
	}
	var last *api.CommandResult
	if before != nil {
		last = before.MostRecentCommand
	}
	failures := 0
	var lastErr error
	for range poll.Attempts {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll.Interval):
		}
		st, err := c.UpdateStatus(ctx)
		if err != nil {
			if errors.As(err, &se) && se.Code == http.StatusLocked {
				continue // an older server answers 423 while the command runs
			}
			if failures++; failures > maxStatusFailures {
				return nil, fmt.Errorf("wait for update %s: %d reads of the status failed, the last: %w", cmd, failures, err)
			}
			lastErr = err
			continue
		}
		r := st.MostRecentCommand
		if r == nil || r.CmdType != cmd || (last != nil && r.Timestamp.Equal(last.Timestamp)) || st.RunningCommand != nil {
			continue // not ended, or ended and not yet released its lock
		}
		if r.CmdStatus != api.CommandSuccess {
			return st, &UpdateError{Command: cmd, Result: *r}
		}
		return st, nil
	}
	msg := fmt.Sprintf("update %s did not end within %s; the host may still be working on it (see apiclient get %s)",
		cmd, poll.Wait(), api.PathUpdateStatus)
	if lastErr != nil {
		return nil, fmt.Errorf("%s; the last read of the status failed: %w", msg, lastErr)
	}
	return nil, errors.New(msg)
}

// updateCmd is apiclient's update subcommand: check, apply and cancel, as
// upstream's.
func (a *app) updateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "update check | apply [--check] [--reboot] | cancel",
		Short: "Check for, apply or cancel an OS update",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return cli.Usagef("update needs a subcommand: check, apply or cancel")
		},
	}
	check := &cobra.Command{
		Use:   "check",
		Short: "Refresh the list of available updates and print the update status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := a.open()
			defer c.Close()
			st, err := c.Update(cmd.Context(), api.UpdateRefresh, DefaultPoll(api.UpdateRefresh))
			if err != nil {
				return err
			}
			return a.printJSON(st)
		},
	}
	var doCheck, reboot bool
	apply := &cobra.Command{
		Use:   "apply [--check] [--reboot]",
		Short: "Write the chosen update to the inactive bank and make it the next to boot",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.updateApply(cmd.Context(), doCheck, reboot)
		},
	}
	apply.Flags().BoolVarP(&doCheck, "check", "c", false, "refresh the available updates first; stop if there is none")
	apply.Flags().BoolVarP(&reboot, "reboot", "r", false, "reboot into the update once it is applied")
	cancel := &cobra.Command{
		Use:   "cancel",
		Short: "Undo apply: the running bank boots next again, the update stays written",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := a.open()
			defer c.Close()
			if _, err := c.Update(cmd.Context(), api.UpdateDeactivate, DefaultPoll(api.UpdateDeactivate)); err != nil {
				return err
			}
			fmt.Fprintln(a.stderr, "The update is cancelled: the running version boots next.")
			return nil
		},
	}
	cmd.AddCommand(check, apply, cancel)
	return cmd
}

// updateApply is "update apply": optionally a refresh first, then prepare
// and activate, then optionally a reboot.
func (a *app) updateApply(ctx context.Context, doCheck, reboot bool) error {
	c := a.open()
	defer c.Close()
	log := func(format string, args ...any) { fmt.Fprintf(a.stderr, format+"\n", args...) }
	state := api.UpdateState("")
	if doCheck {
		st, err := c.Update(ctx, api.UpdateRefresh, DefaultPoll(api.UpdateRefresh))
		if err != nil {
			return err
		}
		state = st.UpdateState
		if state == api.UpdateIdle {
			log("No updates available.")
			return nil
		}
	}
	if state == api.UpdateReady {
		log("The update is applied already.")
	} else {
		if chosen := a.chosen(ctx, c); chosen != "" {
			log("Downloading update %s and writing it to the inactive bank...", chosen)
		} else {
			log("Downloading the update and writing it to the inactive bank...")
		}
		if _, err := c.Update(ctx, api.UpdatePrepare, DefaultPoll(api.UpdatePrepare)); err != nil {
			return explainRefusal(err)
		}
		log("Making the inactive bank the next to boot...")
		if _, err := c.Update(ctx, api.UpdateActivate, DefaultPoll(api.UpdateActivate)); err != nil {
			return err
		}
	}
	if !reboot {
		log("The update takes effect on the next reboot.")
		return nil
	}
	log("Rebooting into the update.")
	return c.Reboot(ctx)
}

// chosen returns the version prepare would write, "" if unknown.
func (a *app) chosen(ctx context.Context, c *Client) string {
	st, err := c.UpdateStatus(ctx)
	if err != nil || st.ChosenUpdate == nil {
		return ""
	}
	return st.ChosenUpdate.Version
}

// explainRefusal adds what to do to a prepare the server refused.
func explainRefusal(err error) error {
	var se *StatusError
	if errors.As(err, &se) && (se.Code == http.StatusConflict || se.Code == http.StatusNotFound) {
		return fmt.Errorf("%w (is an update available? apiclient update check, or update apply --check)", err)
	}
	return err
}
