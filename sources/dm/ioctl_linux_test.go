package dm

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestMarshalRequest(t *testing.T) {
	buf, err := marshalRequest(request{
		name: "root", uuid: "CRYPT-VERITY-x", flags: unix.DM_READONLY_FLAG, targets: 1,
		payload: []byte{1, 2, 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if got, want := len(buf), align8(unix.SizeofDmIoctl+3); got != want {
		t.Fatalf("len = %d, want %d", got, want)
	}
	for i, want := range []uint32{4, 0, 0, uint32(len(buf)), unix.SizeofDmIoctl, 1} {
		if got := le.Uint32(buf[4*i:]); got != want {
			t.Errorf("header word %d = %d, want %d", i, got, want)
		}
	}
	if got := le.Uint32(buf[28:]); got != unix.DM_READONLY_FLAG {
		t.Errorf("flags = %#x, want DM_READONLY_FLAG", got)
	}
	if got := cString(buf[48 : 48+128]); got != "root" {
		t.Errorf("name = %q", got)
	}
	if got := cString(buf[48+128 : 48+128+129]); got != "CRYPT-VERITY-x" {
		t.Errorf("uuid = %q", got)
	}
	if got := buf[unix.SizeofDmIoctl : unix.SizeofDmIoctl+3]; !reflect.DeepEqual(got, []byte{1, 2, 3}) {
		t.Errorf("payload = %v", got)
	}
	if _, err := marshalRequest(request{name: strings.Repeat("x", 128)}); err == nil {
		t.Error("marshalRequest accepted a 128-byte name")
	}
	big, _ := marshalRequest(request{name: "x", size: statusBufSize})
	if len(big) != statusBufSize {
		t.Errorf("len with size hint = %d, want %d", len(big), statusBufSize)
	}
}

func TestTablePayload(t *testing.T) {
	targets := []Target{
		{Start: 0, Length: 8, Type: "linear", Params: "254:1 0"},
		{Start: 8, Length: 16, Type: "zero"},
	}
	p, err := tablePayload(targets)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	// first spec: 40 bytes + "254:1 0\0" (8) = 48, already aligned.
	if got := le.Uint32(p[20:]); got != 48 {
		t.Errorf("first next = %d, want 48", got)
	}
	if got := cString(p[24:40]); got != "linear" {
		t.Errorf("first type = %q", got)
	}
	if got := cString(p[40:]); got != "254:1 0" {
		t.Errorf("first params = %q", got)
	}
	second := p[48:]
	if got := le.Uint64(second[0:]); got != 8 {
		t.Errorf("second start = %d", got)
	}
	if got := le.Uint64(second[8:]); got != 16 {
		t.Errorf("second length = %d", got)
	}
	if len(p) != 48+48 {
		t.Errorf("payload length = %d, want 96", len(p))
	}
	if _, err := tablePayload([]Target{{Length: 1, Type: ""}}); err == nil {
		t.Error("tablePayload accepted an empty type")
	}
}

// fakeReply lays out a DM_TABLE_STATUS reply the way the kernel does: "next"
// counts from the start of the data area.
func fakeReply(targets []Target) []byte {
	var data []byte
	for _, tg := range targets {
		spec := unix.DmTargetSpec{Sector_start: tg.Start, Length: tg.Length}
		copy(spec.Target_type[:], tg.Type)
		n := align8(unix.SizeofDmTargetSpec + len(tg.Params) + 1)
		spec.Next = uint32(len(data) + n)
		rec := make([]byte, n)
		copy(rec, (*[unix.SizeofDmTargetSpec]byte)(unsafe.Pointer(&spec))[:])
		copy(rec[unix.SizeofDmTargetSpec:], tg.Params)
		data = append(data, rec...)
	}
	buf, _ := marshalRequest(request{name: "root", targets: uint32(len(targets)), payload: data})
	return buf
}

func TestParseReply(t *testing.T) {
	want := []Target{
		{Start: 0, Length: 20272, Type: "verity", Params: "V"},
		{Start: 20272, Length: 8, Type: "zero"},
	}
	got, err := parseReply(fakeReply(want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseReply = %+v, want %+v", got, want)
	}
	for _, tt := range []struct {
		name string
		buf  []byte
	}{
		{"short", make([]byte, 10)},
		{"count beyond data", func() []byte { b := fakeReply(want[:1]); b[20] = 3; return b }()},
		{"no NUL", func() []byte {
			b := fakeReply([]Target{{Length: 1, Type: "zero", Params: "1234567"}})
			for i := unix.SizeofDmIoctl + unix.SizeofDmTargetSpec; i < len(b); i++ {
				b[i] = 'x'
			}
			return b
		}()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := parseReply(tt.buf); err == nil {
				t.Fatalf("parseReply succeeded with %+v, want error", got)
			}
		})
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add(fakeReply([]Target{{Length: 8, Type: "verity", Params: "V"}}))
	f.Add(fakeReply([]Target{{Length: 8, Type: "zero"}, {Start: 8, Length: 8, Type: "linear", Params: "254:1 0"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := parseReply(b)
		if err == nil && len(ts) > MaxTargets {
			t.Fatalf("parseReply returned %d targets", len(ts))
		}
	})
}
