package bridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

func frames() []Frame {
	return []Frame{
		{Type: Hello, Session: 0x01020304},
		{Type: Open, Session: 7, Stream: 1},
		{Type: Data, Session: 7, Stream: 1, Payload: []byte("GET /os HTTP/1.1\r\n\r\n")},
		{Type: Data, Session: 7, Stream: 2, Payload: bytes.Repeat([]byte{'P', 'B', 'R', '1', 0}, MaxPayload/5)},
		{Type: Window, Session: 7, Stream: 1, Payload: []byte{0, 1, 0, 0}},
		{Type: Reset, Session: 7, Stream: 3, Payload: append([]byte{byte(ReasonDialFailed)}, "no socket"...)},
	}
}

func encode(fs ...Frame) []byte {
	var b []byte
	for _, f := range fs {
		b = AppendFrame(b, f)
	}
	return b
}

func decodeAll(t *testing.T, r io.Reader) ([]Frame, int64) {
	t.Helper()
	d := NewDecoder(r)
	var out []Frame
	for {
		f, err := d.Next()
		if errors.Is(err, io.EOF) {
			return out, d.Skipped
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, f)
	}
}

func TestDecoder(t *testing.T) {
	good := frames()
	full := encode(good...)
	truncated := encode(good[3])[:HeaderSize+100] // a header whose payload was cut short
	badHeader := encode(good[1])
	badHeader[10] ^= 1
	badPayload := encode(good[2])
	badPayload[HeaderSize+3] ^= 1
	long := encode(Frame{Type: Data, Session: 7, Stream: 1})
	binary.BigEndian.PutUint16(long[6:8], MaxPayload+1)
	binary.BigEndian.PutUint32(long[20:24], crc32c(long[:20]))
	unknown := encode(Frame{Type: Data, Session: 7, Stream: 1})
	unknown[4] = 99
	binary.BigEndian.PutUint32(unknown[20:24], crc32c(unknown[:20]))
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	for _, tt := range []struct {
		name        string
		in          []byte
		want        []Frame
		wantSkipped int64
	}{
		{"frames back to back", full, good, 0},
		{"garbage first", cat([]byte("PBRPBR1\x00garbage"), full), good, 15},
		{"cut-off frame, preamble, frames", cat(truncated, Preamble(), full), good, int64(len(truncated) + MaxFrame)},
		{"bad header checksum", cat(badHeader, full), good, int64(len(badHeader))},
		{"bad payload checksum", cat(badPayload, full), good, int64(len(badPayload))},
		{"length over the limit", cat(long, full), good, int64(len(long))},
		{"unknown type", cat(unknown, full), good, int64(len(unknown))},
		{"garbage at the end", cat(full, []byte("PB")), good, 2},
		{"only garbage", []byte("not a frame at all"), nil, 18},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				r    io.Reader
			}{{"whole", bytes.NewReader(tt.in)}, {"byte by byte", iotest.OneByteReader(bytes.NewReader(tt.in))}} {
				got, skipped := decodeAll(t, r.r)
				if !reflect.DeepEqual(normalize(got), normalize(tt.want)) {
					t.Errorf("%s: decoded %d frames %v, want %d %v", r.name, len(got), types(got), len(tt.want), types(tt.want))
				}
				if skipped != tt.wantSkipped {
					t.Errorf("%s: skipped %d bytes, want %d", r.name, skipped, tt.wantSkipped)
				}
			}
		})
	}
}

// TestDecoderCutOffWithoutPreamble shows why senders write a preamble: a
// header whose payload never comes makes the reader wait for the bytes of
// the frames that follow.
func TestDecoderCutOffWithoutPreamble(t *testing.T) {
	in := append(encode(frames()[3])[:HeaderSize+10], encode(frames()[0])...)
	d := NewDecoder(bytes.NewReader(in))
	if f, err := d.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next = %v, %v; want io.EOF: the hello is taken as part of the cut-off frame", f.Type, err)
	}
}

func normalize(fs []Frame) []Frame {
	for i := range fs {
		if fs[i].Payload == nil {
			fs[i].Payload = []byte{}
		}
	}
	return fs
}

func types(fs []Frame) []string {
	var s []string
	for _, f := range fs {
		s = append(s, f.Type.String())
	}
	return s
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// FuzzDecoder feeds arbitrary bytes, alone and around valid frames: the
// decoder must not panic, must return only frames that re-encode to bytes
// of the input, and must find valid frames that follow a preamble.
func FuzzDecoder(f *testing.F) {
	f.Add(encode(frames()...))
	f.Add([]byte("PBR1"))
	f.Add(encode(frames()[3])[:HeaderSize+7])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(bytes.NewReader(in))
		for {
			fr, err := d.Next()
			if err != nil {
				break
			}
			if len(fr.Payload) > MaxPayload {
				t.Fatalf("payload of %d bytes", len(fr.Payload))
			}
			if !bytes.Contains(in, AppendFrame(nil, fr)) {
				t.Fatalf("decoded a %s frame that is not in the input", fr.Type)
			}
		}
		want := frames()
		stream := bytes.Join([][]byte{in, Preamble(), encode(want...)}, nil)
		got, _ := decodeAll(t, bytes.NewReader(stream))
		if len(got) < len(want) || !reflect.DeepEqual(normalize(got[len(got)-len(want):]), normalize(want)) {
			t.Fatalf("frames after garbage and a preamble: got %v, want %v at the end", types(got), types(want))
		}
	})
}
