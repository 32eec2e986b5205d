package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The exec protocol (GET /exec, docs/api.md "Exec"): after the WebSocket
// upgrade the client sends an Initialize text message naming the host
// container and the command; binary messages carry the command's input
// (client to server) and its output, standard output and standard error
// together (server to client); text messages carry JSON control messages;
// the server ends the session with a Close frame whose code is 1000 and
// whose reason is the command's exit status in decimal. The messages are
// upstream's (serde's externally tagged enums), so either side talks to
// Bottlerocket's.
const (
	// PathExec is the WebSocket route.
	PathExec = "/exec"
	// ExecMaxMessagesOutstanding is the number of input messages the
	// server holds before they reach the command; a client that sends
	// more than this beyond the last Capacity's messages_written is
	// disconnected with close code 1009.
	ExecMaxMessagesOutstanding = 1024
	// ExecCapacityInterval is how many input messages the server writes
	// to the command between two Capacity messages.
	ExecCapacityInterval = 128
	// ExecHeartbeatInterval is how often each side pings the other;
	// ExecHeartbeatTimeout is how long a ping may go unanswered before
	// the side gives the session up.
	ExecHeartbeatInterval = 2 * time.Second
	ExecHeartbeatTimeout  = 10 * time.Second
	// ExecMaxMessageBytes is the largest message either side reads.
	ExecMaxMessageBytes = 64 << 10
	// ExecInputChunk is the size of the input messages apiclient sends.
	ExecInputChunk = 4096
)

// WebSocket close codes of the exec protocol (RFC 6455, section 7.4.1).
const (
	// ExecCloseNormal ends a session whose command exited; the reason
	// is its exit status.
	ExecCloseNormal = 1000
	// ExecCloseGoingAway: the server is shutting down, or the client
	// was interrupted.
	ExecCloseGoingAway = 1001
	// ExecCloseUnsupported: a continuation frame.
	ExecCloseUnsupported = 1003
	// ExecCloseInvalid: a control message that is not valid JSON or
	// does not fit the protocol; the reason names the field.
	ExecCloseInvalid = 1007
	// ExecClosePolicy: messages out of order (input before
	// Initialize, a second Initialize).
	ExecClosePolicy = 1008
	// ExecCloseSize: the client ignored the capacity updates.
	ExecCloseSize = 1009
	// ExecCloseError: the command could not be run (no such host
	// container, not running, host containerd unavailable).
	ExecCloseError = 1011
)

// ExecHeartbeat calls ping every interval until ctx ends (it returns nil)
// or a ping fails or does not return within timeout (it returns the
// error). Both sides of a session run it with their WebSocket's Ping.
func ExecHeartbeat(ctx context.Context, ping func(context.Context) error, interval, timeout time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("heartbeat: no answer to a ping within %s: %w", timeout, err)
		}
	}
}

// ExecMessageKind names a client control message.
type ExecMessageKind string

// The client control messages.
const (
	ExecInitialize      ExecMessageKind = "Initialize"
	ExecContentComplete ExecMessageKind = "ContentComplete"
	ExecWinch           ExecMessageKind = "Winch"
)

// ExecClientMessage is a decoded client control message: Init is set for
// Initialize, Size for Winch.
type ExecClientMessage struct {
	Kind ExecMessageKind
	Init *ExecInit
	Size *WindowSize
}

// ExecInit asks for a command in a host container.
type ExecInit struct {
	// Command is the program and its arguments, as bytes (upstream's
	// OsString): no NUL bytes, at least the program.
	Command []string
	// Target is the host container, its containerd ID.
	Target string
	// TTY asks for a terminal; nil for pipes.
	TTY *ExecTTY
}

// ExecTTY is the terminal of an ExecInit.
type ExecTTY struct {
	// Size is the initial window size; nil leaves the runtime's.
	Size *WindowSize
}

// WindowSize is a terminal's size in character cells.
type WindowSize struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// ExecCapacity is the server's flow-control message: how many input
// messages may be outstanding and how many it has written so far.
type ExecCapacity struct {
	MaxMessagesOutstanding uint64 `json:"max_messages_outstanding"`
	MessagesWritten        uint64 `json:"messages_written"`
}

// FieldError is a problem with one field of a control message; Field is
// its path, as in "Initialize.command[1]".
type FieldError struct {
	Field, Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// ParseExecClientMessage decodes a client's text message. It accepts what
// upstream's serde encoding accepts ("ContentComplete" also as
// {"ContentComplete":null}; unknown members of Initialize are ignored) and
// also plain JSON strings as command arguments. Every problem is reported,
// each as a *FieldError naming its field.
func ParseExecClientMessage(data []byte) (ExecClientMessage, error) {
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return ExecClientMessage{}, fmt.Errorf("control message is not JSON: %w", err)
	}
	var name string
	if json.Unmarshal(raw, &name) == nil {
		if ExecMessageKind(name) == ExecContentComplete {
			return ExecClientMessage{Kind: ExecContentComplete}, nil
		}
		return ExecClientMessage{}, fieldErr("message", "%q is not a message without content (want \"ContentComplete\")", name)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || len(obj) != 1 {
		return ExecClientMessage{}, fieldErr("message", "want an object with one member, Initialize, ContentComplete or Winch")
	}
	for k, v := range obj {
		switch ExecMessageKind(k) {
		case ExecInitialize:
			init, err := parseInit(v)
			if err != nil {
				return ExecClientMessage{}, err
			}
			return ExecClientMessage{Kind: ExecInitialize, Init: &init}, nil
		case ExecWinch:
			size, err := parseSize(string(ExecWinch), v)
			if err != nil {
				return ExecClientMessage{}, err
			}
			return ExecClientMessage{Kind: ExecWinch, Size: &size}, nil
		case ExecContentComplete:
			if !isNull(v) {
				return ExecClientMessage{}, fieldErr(k, "want null")
			}
			return ExecClientMessage{Kind: ExecContentComplete}, nil
		default:
			return ExecClientMessage{}, fieldErr("message", "unknown message %q (want Initialize, ContentComplete or Winch)", k)
		}
	}
	panic("unreachable")
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

func parseInit(v json.RawMessage) (ExecInit, error) {
	const at = string(ExecInitialize)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(v, &fields); err != nil || fields == nil {
		return ExecInit{}, fieldErr(at, "want an object with command, target and tty")
	}
	var init ExecInit
	var errs []error
	if cmd, ok := fields["command"]; !ok {
		errs = append(errs, fieldErr(at+".command", "missing"))
	} else {
		var err error
		init.Command, err = parseCommand(at+".command", cmd)
		errs = append(errs, err)
	}
	if t, ok := fields["target"]; !ok {
		errs = append(errs, fieldErr(at+".target", "missing"))
	} else if err := json.Unmarshal(t, &init.Target); err != nil {
		errs = append(errs, fieldErr(at+".target", "want a string"))
	} else if err := CheckContainerID(init.Target); err != nil {
		errs = append(errs, fieldErr(at+".target", "%v", err))
	}
	if t, ok := fields["tty"]; ok && !isNull(t) {
		var tty map[string]json.RawMessage
		if err := json.Unmarshal(t, &tty); err != nil || tty == nil {
			errs = append(errs, fieldErr(at+".tty", "want null or an object with size"))
		} else {
			init.TTY = &ExecTTY{}
			if s, ok := tty["size"]; ok && !isNull(s) {
				size, err := parseSize(at+".tty.size", s)
				init.TTY.Size = &size
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return ExecInit{}, err
	}
	return init, nil
}

// parseCommand decodes the arguments: each {"Unix":[bytes]} (upstream)
// or a string.
func parseCommand(at string, v json.RawMessage) ([]string, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(v, &elems); err != nil {
		return nil, fieldErr(at, "want an array of arguments")
	}
	if len(elems) == 0 {
		return nil, fieldErr(at, "empty: name the program to run")
	}
	var errs []error
	args := make([]string, len(elems))
	for i, e := range elems {
		field := fmt.Sprintf("%s[%d]", at, i)
		var s string
		var unix struct {
			Unix *[]int `json:"Unix"`
		}
		switch {
		case json.Unmarshal(e, &s) == nil:
		case json.Unmarshal(e, &unix) == nil && unix.Unix != nil && allBytes(*unix.Unix):
			b := make([]byte, len(*unix.Unix))
			for j, c := range *unix.Unix {
				b[j] = byte(c)
			}
			s = string(b)
		default:
			errs = append(errs, fieldErr(field, `want {"Unix":[bytes 0 to 255]} or a string`))
			continue
		}
		switch {
		case strings.IndexByte(s, 0) >= 0:
			errs = append(errs, fieldErr(field, "holds a NUL byte"))
		case i == 0 && s == "":
			errs = append(errs, fieldErr(field, "empty program name"))
		}
		args[i] = s
	}
	return args, errors.Join(errs...)
}

// allBytes tells whether every value is a byte.
func allBytes(vs []int) bool {
	for _, v := range vs {
		if v < 0 || v > 255 {
			return false
		}
	}
	return true
}

func parseSize(at string, v json.RawMessage) (WindowSize, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(v, &fields); err != nil || fields == nil {
		return WindowSize{}, fieldErr(at, "want an object with rows and cols")
	}
	var size WindowSize
	var errs []error
	for _, f := range []struct {
		name string
		dst  *uint16
	}{{"rows", &size.Rows}, {"cols", &size.Cols}} {
		raw, ok := fields[f.name]
		if !ok {
			errs = append(errs, fieldErr(at+"."+f.name, "missing"))
		} else if err := json.Unmarshal(raw, f.dst); err != nil {
			errs = append(errs, fieldErr(at+"."+f.name, "want an integer from 0 to 65535"))
		}
	}
	return size, errors.Join(errs...)
}

// CheckContainerID checks a containerd container ID: 1 to 76 characters,
// letters and digits in runs separated by one '.', '_' or '-'.
func CheckContainerID(id string) error {
	if id == "" {
		return errors.New("empty container name")
	}
	if len(id) > 76 {
		return fmt.Errorf("container name of %d characters, at most 76", len(id))
	}
	prevSep := true
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			prevSep = false
		case (c == '.' || c == '_' || c == '-') && !prevSep:
			prevSep = true
		default:
			return fmt.Errorf("%q is not a container name (letters and digits, separated by single '.', '_' or '-')", id)
		}
	}
	if prevSep {
		return fmt.Errorf("%q is not a container name (letters and digits, separated by single '.', '_' or '-')", id)
	}
	return nil
}

// unixArg is upstream's encoding of an OsString on Unix.
type unixArg struct {
	Unix []uint16 `json:"Unix"`
}

// Encode returns the text message for m, in upstream's encoding: command
// arguments as {"Unix":[bytes]}.
func (m ExecClientMessage) Encode() ([]byte, error) {
	switch m.Kind {
	case ExecContentComplete:
		return json.Marshal(ExecContentComplete)
	case ExecWinch:
		if m.Size == nil {
			return nil, errors.New("encode Winch: no size")
		}
		return json.Marshal(map[ExecMessageKind]WindowSize{ExecWinch: *m.Size})
	case ExecInitialize:
		if m.Init == nil {
			return nil, errors.New("encode Initialize: no content")
		}
		type tty struct {
			Size *WindowSize `json:"size"`
		}
		init := struct {
			Command []unixArg `json:"command"`
			Target  string    `json:"target"`
			TTY     *tty      `json:"tty"`
		}{Command: []unixArg{}, Target: m.Init.Target}
		for _, a := range m.Init.Command {
			u := unixArg{Unix: make([]uint16, len(a))}
			for i := 0; i < len(a); i++ {
				u.Unix[i] = uint16(a[i])
			}
			init.Command = append(init.Command, u)
		}
		if m.Init.TTY != nil {
			init.TTY = &tty{Size: m.Init.TTY.Size}
		}
		return json.Marshal(map[ExecMessageKind]any{ExecInitialize: init})
	}
	return nil, fmt.Errorf("encode message: unknown kind %q", m.Kind)
}

// Encode returns the text message for c.
func (c ExecCapacity) Encode() []byte {
	b, _ := json.Marshal(map[string]ExecCapacity{"Capacity": c})
	return b
}

// ParseExecServerMessage decodes a server's text message; Capacity is the
// only one.
func ParseExecServerMessage(data []byte) (ExecCapacity, error) {
	var m struct {
		Capacity *ExecCapacity `json:"Capacity"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return ExecCapacity{}, fmt.Errorf("decode server message %.64q: %w", data, err)
	}
	if m.Capacity == nil {
		return ExecCapacity{}, fmt.Errorf("decode server message %.64q: not a Capacity message", data)
	}
	return *m.Capacity, nil
}
