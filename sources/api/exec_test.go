package api

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseExecClientMessage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, in string
		want     ExecClientMessage
		errs     []string // every one must be in the error
	}{
		{name: "upstream initialize", in: `{"Initialize":{"command":[{"Unix":[115,104]},{"Unix":[45,99]},{"Unix":[255]}],"target":"admin","tty":{"size":{"rows":24,"cols":80}}}}`,
			want: ExecClientMessage{Kind: ExecInitialize, Init: &ExecInit{Command: []string{"sh", "-c", "\xff"}, Target: "admin", TTY: &ExecTTY{Size: &WindowSize{Rows: 24, Cols: 80}}}}},
		{name: "strings, no tty", in: `{"Initialize":{"command":["ls","-l"],"target":"control","tty":null,"extra":1}}`,
			want: ExecClientMessage{Kind: ExecInitialize, Init: &ExecInit{Command: []string{"ls", "-l"}, Target: "control"}}},
		{name: "tty without size", in: `{"Initialize":{"command":["sh"],"target":"boot.x-1","tty":{"size":null}}}`,
			want: ExecClientMessage{Kind: ExecInitialize, Init: &ExecInit{Command: []string{"sh"}, Target: "boot.x-1", TTY: &ExecTTY{}}}},
		{name: "content complete", in: `"ContentComplete"`, want: ExecClientMessage{Kind: ExecContentComplete}},
		{name: "content complete as object", in: ` {"ContentComplete":null} `, want: ExecClientMessage{Kind: ExecContentComplete}},
		{name: "winch", in: `{"Winch":{"rows":50,"cols":132}}`, want: ExecClientMessage{Kind: ExecWinch, Size: &WindowSize{Rows: 50, Cols: 132}}},
		{name: "not json", in: `{"Initialize":`, errs: []string{"control message is not JSON"}},
		{name: "trailing data", in: `"ContentComplete" 1`, errs: []string{"control message is not JSON"}},
		{name: "unknown message", in: `{"Resize":{}}`, errs: []string{`message: unknown message "Resize"`}},
		{name: "unknown bare message", in: `"Winch"`, errs: []string{`message: "Winch" is not a message without content`}},
		{name: "two members", in: `{"Winch":{"rows":1,"cols":1},"ContentComplete":null}`, errs: []string{"message: want an object with one member"}},
		{name: "array", in: `[1]`, errs: []string{"message: want an object with one member"}},
		{name: "content complete with content", in: `{"ContentComplete":1}`, errs: []string{"ContentComplete: want null"}},
		{name: "initialize not object", in: `{"Initialize":[]}`, errs: []string{"Initialize: want an object"}},
		{name: "every field wrong", in: `{"Initialize":{"command":"sh","target":7,"tty":{"size":{"rows":-1}}}}`,
			errs: []string{"Initialize.command: want an array of arguments", "Initialize.target: want a string",
				"Initialize.tty.size.rows: want an integer from 0 to 65535", "Initialize.tty.size.cols: missing"}},
		{name: "missing fields", in: `{"Initialize":{}}`, errs: []string{"Initialize.command: missing", "Initialize.target: missing"}},
		{name: "empty command", in: `{"Initialize":{"command":[],"target":"admin"}}`, errs: []string{"Initialize.command: empty: name the program to run"}},
		{name: "bad arguments", in: `{"Initialize":{"command":["",{"Unix":[256]},{"Windows":[1]},"a\u0000b",{"Unix":"aGk="}],"target":"admin"}}`,
			errs: []string{"Initialize.command[0]: empty program name", `Initialize.command[1]: want {"Unix":[bytes 0 to 255]} or a string`,
				`Initialize.command[2]: want`, "Initialize.command[3]: holds a NUL byte", `Initialize.command[4]: want`}},
		{name: "bad target", in: `{"Initialize":{"command":["sh"],"target":"../etc"}}`, errs: []string{`Initialize.target: "../etc" is not a container name`}},
		{name: "empty target", in: `{"Initialize":{"command":["sh"],"target":""}}`, errs: []string{"Initialize.target: empty container name"}},
		{name: "tty not object", in: `{"Initialize":{"command":["sh"],"target":"a","tty":true}}`, errs: []string{"Initialize.tty: want null or an object"}},
		{name: "winch too big", in: `{"Winch":{"rows":65536,"cols":1}}`, errs: []string{"Winch.rows: want an integer from 0 to 65535"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseExecClientMessage([]byte(tt.in))
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("ParseExecClientMessage(%s): %v", tt.in, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("ParseExecClientMessage(%s) = %+v, want %+v", tt.in, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseExecClientMessage(%s) = %+v, want an error", tt.in, got)
			}
			for _, e := range tt.errs {
				if !strings.Contains(err.Error(), e) {
					t.Errorf("error %q lacks %q", err, e)
				}
			}
		})
	}
}

// TestExecEncodeUpstream checks the encoding against upstream's (serde's)
// spelling of the messages.
func TestExecEncodeUpstream(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		m    ExecClientMessage
		want string
	}{
		{ExecClientMessage{Kind: ExecInitialize, Init: &ExecInit{Command: []string{"ls", "\xff"}, Target: "admin", TTY: &ExecTTY{Size: &WindowSize{Rows: 2, Cols: 3}}}},
			`{"Initialize":{"command":[{"Unix":[108,115]},{"Unix":[255]}],"target":"admin","tty":{"size":{"rows":2,"cols":3}}}}`},
		{ExecClientMessage{Kind: ExecInitialize, Init: &ExecInit{Command: []string{"true"}, Target: "control"}},
			`{"Initialize":{"command":[{"Unix":[116,114,117,101]}],"target":"control","tty":null}}`},
		{ExecClientMessage{Kind: ExecContentComplete}, `"ContentComplete"`},
		{ExecClientMessage{Kind: ExecWinch, Size: &WindowSize{Rows: 40, Cols: 100}}, `{"Winch":{"rows":40,"cols":100}}`},
	} {
		got, err := tt.m.Encode()
		if err != nil || string(got) != tt.want {
			t.Errorf("Encode(%+v) = %s, %v; want %s", tt.m, got, err, tt.want)
		}
		back, err := ParseExecClientMessage(got)
		if err != nil || !reflect.DeepEqual(back, tt.m) {
			t.Errorf("ParseExecClientMessage(%s) = %+v, %v; want %+v", got, back, err, tt.m)
		}
	}
	if _, err := (ExecClientMessage{Kind: "Resize"}).Encode(); err == nil {
		t.Error("Encode of an unknown kind succeeded")
	}
	c := ExecCapacity{MaxMessagesOutstanding: 1024, MessagesWritten: 128}
	if got := string(c.Encode()); got != `{"Capacity":{"max_messages_outstanding":1024,"messages_written":128}}` {
		t.Errorf("Capacity.Encode() = %s", got)
	}
	if back, err := ParseExecServerMessage(c.Encode()); err != nil || back != c {
		t.Errorf("ParseExecServerMessage = %+v, %v", back, err)
	}
	for _, bad := range []string{`{}`, `{"Capacity":1}`, `"Capacity"`, `{`} {
		if _, err := ParseExecServerMessage([]byte(bad)); err == nil || !strings.Contains(err.Error(), "decode server message") {
			t.Errorf("ParseExecServerMessage(%s) = %v, want an error", bad, err)
		}
	}
}

func TestCheckContainerID(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"admin", "control", "boot.setup", "a-b_c.d", "A1", strings.Repeat("a", 76)} {
		if err := CheckContainerID(ok); err != nil {
			t.Errorf("CheckContainerID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", "a-", "a..b", "a/b", "a b", strings.Repeat("a", 77), "ä"} {
		if err := CheckContainerID(bad); err == nil {
			t.Errorf("CheckContainerID(%q) = nil, want an error", bad)
		}
	}
}

// FuzzExecClientMessage feeds arbitrary text messages to the server's
// parser: it must never panic, an accepted Initialize must satisfy what
// the server relies on (a valid target, a program, no NUL bytes), and
// every accepted message must survive Encode and a second parse.
func FuzzExecClientMessage(f *testing.F) {
	for _, s := range []string{`"ContentComplete"`, `{"Winch":{"rows":1,"cols":2}}`,
		`{"Initialize":{"command":[{"Unix":[115,104]}],"target":"admin","tty":{"size":{"rows":24,"cols":80}}}}`,
		`{"Initialize":{"command":["sh","-c","x"],"target":"a.b","tty":null}}`, `{"Initialize":{"command":[""],"target":"-"}}`, `[]`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseExecClientMessage(data)
		if err != nil {
			return
		}
		if m.Kind == ExecInitialize {
			if CheckContainerID(m.Init.Target) != nil || len(m.Init.Command) == 0 || m.Init.Command[0] == "" {
				t.Fatalf("accepted %s as %+v", data, m.Init)
			}
			for _, a := range m.Init.Command {
				if strings.IndexByte(a, 0) >= 0 {
					t.Fatalf("accepted a NUL byte in %s", data)
				}
			}
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode(%+v) of %s: %v", m, data, err)
		}
		back, err := ParseExecClientMessage(enc)
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("%s: %+v encodes to %s, which parses to %+v, %v", data, m, enc, back, err)
		}
		if !utf8.Valid(enc) {
			t.Fatalf("Encode(%+v) is not UTF-8", m)
		}
	})
}

// TestExecHeartbeat checks that a ping left unanswered ends the
// heartbeat with an error, and that answered pings go on until the
// context ends.
func TestExecHeartbeat(t *testing.T) {
	t.Parallel()
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	err := ExecHeartbeat(context.Background(), hang, time.Millisecond, 20*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "heartbeat: no answer to a ping within 20ms") {
		t.Errorf("unanswered: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pings := 0
	answer := func(context.Context) error {
		if pings++; pings == 5 {
			cancel()
		}
		return nil
	}
	if err := ExecHeartbeat(ctx, answer, time.Millisecond, time.Second); err != nil || pings != 5 {
		t.Errorf("answered: %v after %d pings, want nil after 5", err, pings)
	}
}
