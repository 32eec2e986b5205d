package guestinfo

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestReaderGet(t *testing.T) {
	big := strings.Repeat("W3NldHRpbmdzXQptb3RkID0gInZtIgo=", 3000) + "xyz" // not a multiple of 4
	for _, tt := range []struct {
		name   string
		vmx    fakeVMX
		key    string
		value  string
		ok     bool
		err    error  // errors.Is target
		errMsg string // substring
		calls  map[uint16]int
	}{
		{name: "set", vmx: fakeVMX{keys: map[string]string{"guestinfo.userdata": "hello"}}, key: "guestinfo.userdata", value: "hello", ok: true},
		{name: "empty value", vmx: fakeVMX{keys: map[string]string{"guestinfo.userdata": ""}}, key: "guestinfo.userdata", value: "", ok: true},
		{name: "not set", vmx: fakeVMX{keys: map[string]string{"guestinfo.other": "x"}}, key: "guestinfo.userdata", ok: false},
		{name: "large value", vmx: fakeVMX{keys: map[string]string{"guestinfo.userdata": big}}, key: "guestinfo.userdata", value: big, ok: true},
		{name: "one byte key", vmx: fakeVMX{keys: map[string]string{"guestinfo.k": "v with spaces\nand lines"}}, key: "guestinfo.k", value: "v with spaces\nand lines", ok: true},
		{
			name: "host without cookies", vmx: fakeVMX{noCookie: true, keys: map[string]string{"guestinfo.a": "b"}},
			key: "guestinfo.a", value: "b", ok: true, calls: map[uint16]int{msgOpen: 2},
		},
		{
			name: "checkpoint while sending", vmx: fakeVMX{breakType: msgSendPayload, breakAt: 3, checkpoint: true, keys: map[string]string{"guestinfo.a": "b"}},
			key: "guestinfo.a", value: "b", ok: true, calls: map[uint16]int{msgSendSize: 2},
		},
		{
			name: "checkpoint at reply size", vmx: fakeVMX{breakType: msgRecvSize, breakAt: 1, checkpoint: true, keys: map[string]string{"guestinfo.a": "b"}},
			key: "guestinfo.a", value: "b", ok: true, calls: map[uint16]int{msgRecvSize: 2},
		},
		{
			name: "checkpoint while receiving", vmx: fakeVMX{breakType: msgRecvPayload, breakAt: 2, checkpoint: true, keys: map[string]string{"guestinfo.a": "a longer value"}},
			key: "guestinfo.a", value: "a longer value", ok: true, calls: map[uint16]int{msgRecvSize: 2},
		},
		{
			name: "endless checkpoints", vmx: fakeVMX{breakType: msgSendPayload, breakAt: -1, checkpoint: true},
			key: "guestinfo.a", err: ErrRPC, errMsg: "send RPCI message on channel 1 at byte 0: RPCI exchange failed: interrupted by a VM checkpoint",
			calls: map[uint16]int{msgSendSize: checkpointRetries + 1},
		},
		{
			name: "channel refused", vmx: fakeVMX{noCookie: true, breakType: msgOpen, breakAt: 2},
			key: "guestinfo.a", err: ErrRPC, errMsg: "read guestinfo.a: open RPCI channel: RPCI exchange failed: refused by the hypervisor",
		},
		{
			name: "channel broken while sending", vmx: fakeVMX{breakType: msgSendPayload, breakAt: 2},
			key: "guestinfo.userdata", err: ErrRPC, errMsg: "send RPCI message on channel 1 at byte 4: RPCI exchange failed: status 0x00",
		},
		{
			name: "channel broken while receiving", vmx: fakeVMX{breakType: msgRecvPayload, breakAt: 3, keys: map[string]string{"guestinfo.a": "0123456789abcdef"}},
			key: "guestinfo.a", err: ErrRPC, errMsg: "receive RPCI reply on channel 1 at byte 8: RPCI exchange failed",
		},
		{
			name: "channel broken at reply size", vmx: fakeVMX{breakType: msgRecvSize, breakAt: 1},
			key: "guestinfo.a", err: ErrRPC, errMsg: "receive size of RPCI reply on channel 1",
		},
		{
			name: "acknowledgement refused", vmx: fakeVMX{breakType: msgRecvStatus, breakAt: 1, keys: map[string]string{"guestinfo.a": "b"}},
			key: "guestinfo.a", err: ErrRPC, errMsg: "acknowledge RPCI reply on channel 1",
		},
		{
			name: "close refused", vmx: fakeVMX{breakType: msgClose, breakAt: 1, keys: map[string]string{"guestinfo.a": "b"}},
			key: "guestinfo.a", err: ErrRPC, errMsg: "close RPCI channel 1",
		},
		{
			name: "wrong message type", vmx: fakeVMX{wrongType: true},
			key: "guestinfo.a", err: ErrRPC, errMsg: "message type 2, expected 1 (send size)",
		},
		{
			name: "reply too large", vmx: fakeVMX{replySize: MaxReply + 1},
			key: "guestinfo.a", err: ErrRPC, errMsg: "25165825 bytes, more than 25165824",
		},
		{
			name: "reply out of protocol", vmx: fakeVMX{reply: "yes"},
			key: "guestinfo.a", err: ErrRPC, errMsg: `parse RPCI reply "yes"`,
		},
		{
			name: "fault", vmx: fakeVMX{fault: true},
			key: "guestinfo.a", err: ErrBackdoorFault, errMsg: "read guestinfo.a: open RPCI channel: VMware backdoor call faulted",
		},
		{name: "key without prefix", key: "userdata", errMsg: `guestinfo key "userdata": expected "guestinfo." followed by a name`},
		{name: "prefix only", key: "guestinfo.", errMsg: `expected "guestinfo." followed by a name`},
		{name: "key with space", key: "guestinfo.a b", errMsg: "byte 0x20 at 11"},
		{name: "key with newline", key: "guestinfo.a\n", errMsg: "byte 0x0a at 11"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vmx := tt.vmx
			value, ok, err := Reader{Port: &vmx}.Get(context.Background(), tt.key)
			switch {
			case tt.err == nil && tt.errMsg == "":
				if err != nil || value != tt.value || ok != tt.ok {
					t.Fatalf("Get(%q) = %.40q, %v, %v; want %.40q, %v", tt.key, value, ok, err, tt.value, tt.ok)
				}
			case err == nil || (tt.err != nil && !errors.Is(err, tt.err)) || !strings.Contains(err.Error(), tt.errMsg):
				t.Fatalf("Get(%q) error = %v; want %v containing %q", tt.key, err, tt.err, tt.errMsg)
			case value != "" || ok:
				t.Fatalf("Get(%q) = %q, %v with error %v", tt.key, value, ok, err)
			}
			if err := vmx.check(); err != nil {
				t.Errorf("protocol: %v", err)
			}
			for typ, n := range tt.calls {
				if vmx.calls[typ] != n {
					t.Errorf("%d calls of message type %d, want %d", vmx.calls[typ], typ, n)
				}
			}
			if tt.err == nil && tt.errMsg == "" && (len(vmx.commands) == 0 || vmx.commands[len(vmx.commands)-1] != "info-get "+tt.key) {
				t.Errorf("commands = %q, want the last to be info-get %s", vmx.commands, tt.key)
			}
		})
	}
}

func TestReaderGetCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	vmx := &fakeVMX{}
	if _, _, err := (Reader{Port: vmx}).Get(ctx, "guestinfo.a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(vmx.calls) != 0 {
		t.Fatalf("calls after cancel: %v", vmx.calls)
	}
}

func TestExchangeOtherCommand(t *testing.T) {
	vmx := &fakeVMX{}
	reply, err := Exchange(context.Background(), vmx, "tools.set.version 0")
	if err != nil || string(reply) != "0 Unknown command" {
		t.Fatalf("Exchange = %q, %v", reply, err)
	}
	if err := vmx.check(); err != nil {
		t.Fatal(err)
	}
}

func TestParseReply(t *testing.T) {
	for _, tt := range []struct {
		reply  string
		value  string
		ok     bool
		errMsg string
	}{
		{reply: "1 value", value: "value", ok: true},
		{reply: "1 ", value: "", ok: true},
		{reply: "1", value: "", ok: true},
		{reply: "1  two spaces", value: " two spaces", ok: true},
		{reply: "1 a\nb\x00c", value: "a\nb\x00c", ok: true},
		{reply: "0 No value found"},
		{reply: "0 Permission denied"},
		{reply: "0"},
		{reply: "", errMsg: "empty"},
		{reply: "1value", errMsg: "expected a space after the status digit"},
		{reply: "2 what", errMsg: `status '2', expected '1' or '0'`},
		{reply: strings.Repeat("x", 100), errMsg: strings.Repeat("x", 40) + "..."},
	} {
		t.Run(tt.reply, func(t *testing.T) {
			value, ok, err := ParseReply([]byte(tt.reply))
			if tt.errMsg != "" {
				if err == nil || !errors.Is(err, ErrRPC) || !strings.Contains(err.Error(), tt.errMsg) {
					t.Fatalf("ParseReply(%q) error = %v; want ErrRPC containing %q", tt.reply, err, tt.errMsg)
				}
				return
			}
			if err != nil || value != tt.value || ok != tt.ok {
				t.Fatalf("ParseReply(%q) = %q, %v, %v; want %q, %v", tt.reply, value, ok, err, tt.value, tt.ok)
			}
		})
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"1 value", "1", "0 No value found", "", "1x", "9 9"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		value, ok, err := ParseReply(reply)
		switch {
		case err != nil:
			if !errors.Is(err, ErrRPC) || value != "" || ok {
				t.Fatalf("ParseReply(%q) = %q, %v, %v", reply, value, ok, err)
			}
		case ok:
			if s := string(reply); s != "1 "+value && !(s == "1" && value == "") {
				t.Fatalf("ParseReply(%q) = %q, ok: not the reply's value", reply, value)
			}
		default:
			if reply[0] != '0' || value != "" {
				t.Fatalf("ParseReply(%q) = %q, not set, but the reply is not a failure", reply, value)
			}
		}
	})
}

// FuzzExchange runs the protocol against the fake hypervisor with any
// value and checks it comes back intact.
func FuzzExchange(f *testing.F) {
	f.Add("", false)
	f.Add("abc", true)
	f.Add("a value of several words\n", false)
	f.Fuzz(func(t *testing.T, value string, noCookie bool) {
		vmx := &fakeVMX{noCookie: noCookie, keys: map[string]string{"guestinfo.k": value}}
		got, ok, err := Reader{Port: vmx}.Get(context.Background(), "guestinfo.k")
		if err != nil || !ok || got != value {
			t.Fatalf("Get = %q, %v, %v; want %q", got, ok, err, value)
		}
		if err := vmx.check(); err != nil {
			t.Fatal(err)
		}
	})
}
