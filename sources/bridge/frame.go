package bridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Frame layout: a 24-byte header, then Length bytes of payload. All numbers
// are big-endian.
//
//	0  magic "PBR1" (the 1 is the protocol version)
//	4  type
//	5  flags, 0
//	6  payload length, at most MaxPayload
//	8  session
//	12 stream
//	16 CRC-32C of the payload
//	20 CRC-32C of header bytes 0..19
//
// The two checksums let a reader that starts in the middle of the byte
// stream, or behind bytes left over from an earlier session, find the next
// frame: it trusts a header only when its checksum holds, and a payload
// only when the header's payload checksum holds.
const (
	HeaderSize = 24
	// MaxPayload is the largest payload of one frame.
	MaxPayload = 16 << 10
	// MaxFrame is the largest frame on the wire.
	MaxFrame = HeaderSize + MaxPayload
)

var magic = [4]byte{'P', 'B', 'R', '1'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Type is a frame's kind.
type Type uint8

// Frame types. Hello, Ack and Probe run the session handshake; the others
// belong to one stream of the session.
const (
	// Hello (guest → host) starts or confirms the session named by the
	// frame's session field, a number the guest picked at random.
	Hello Type = iota + 1
	// Ack (host → guest) accepts the session; the payload is the host's
	// 4-byte nonce.
	Ack
	// Probe (host → guest) asks a guest to say Hello; the payload is the
	// host's nonce. A host sends one when it starts.
	Probe
	// Open (host → guest) asks the guest to connect a new stream.
	Open
	// Opened (guest → host) answers Open: the stream is connected.
	Opened
	// Data carries stream bytes, at most the window the peer granted.
	Data
	// Window grants the peer more bytes to send; the payload is a 4-byte
	// increment.
	Window
	// Fin says that the sender will send no more data on the stream.
	Fin
	// Reset aborts a stream (or refuses an Open); the payload is one
	// reason byte and a message.
	Reset
	maxType = Reset
)

var typeNames = [...]string{Hello: "hello", Ack: "ack", Probe: "probe", Open: "open", Opened: "opened", Data: "data", Window: "window", Fin: "fin", Reset: "reset"}

func (t Type) String() string {
	if t >= Hello && t <= maxType {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Frame is one decoded frame.
type Frame struct {
	Type    Type
	Session uint32
	Stream  uint32
	Payload []byte
}

// AppendFrame appends the encoding of f to b. It panics when the payload is
// longer than MaxPayload: callers split data themselves.
func AppendFrame(b []byte, f Frame) []byte {
	if len(f.Payload) > MaxPayload {
		panic(fmt.Sprintf("bridge: %s frame payload of %d bytes exceeds %d", f.Type, len(f.Payload), MaxPayload))
	}
	var h [HeaderSize]byte
	copy(h[0:4], magic[:])
	h[4] = byte(f.Type)
	binary.BigEndian.PutUint16(h[6:8], uint16(len(f.Payload)))
	binary.BigEndian.PutUint32(h[8:12], f.Session)
	binary.BigEndian.PutUint32(h[12:16], f.Stream)
	binary.BigEndian.PutUint32(h[16:20], crc32.Checksum(f.Payload, castagnoli))
	binary.BigEndian.PutUint32(h[20:24], crc32.Checksum(h[:20], castagnoli))
	b = append(b, h[:]...)
	return append(b, f.Payload...)
}

// Decoder reads frames from a byte stream that may hold garbage: bytes of
// a frame cut short, of an earlier session, or of nothing at all. It skips
// whatever does not check out and counts the bytes it skipped.
type Decoder struct {
	r          io.Reader
	buf        []byte
	start, end int
	// Skipped is the number of bytes dropped so far while looking for a
	// valid frame.
	Skipped int64
}

// NewDecoder returns a decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: r, buf: make([]byte, 4*MaxFrame)}
}

// fill reads until at least n bytes are buffered.
func (d *Decoder) fill(n int) error {
	if d.end-d.start >= n {
		return nil
	}
	if len(d.buf)-d.start < n {
		copy(d.buf, d.buf[d.start:d.end])
		d.end -= d.start
		d.start = 0
	}
	for d.end-d.start < n {
		m, err := d.r.Read(d.buf[d.end:])
		d.end += m
		if err != nil {
			if d.end-d.start >= n {
				return nil
			}
			return err
		}
	}
	return nil
}

// skip drops n buffered bytes.
func (d *Decoder) skip(n int) {
	d.start += n
	d.Skipped += int64(n)
}

// Next returns the next valid frame. Its payload is a fresh copy. The
// error is the reader's: io.EOF when the stream ends, possibly after
// bytes that never formed a frame (see Skipped).
func (d *Decoder) Next() (Frame, error) {
	for {
		if err := d.fill(HeaderSize); err != nil {
			if errors.Is(err, io.EOF) && d.end > d.start {
				d.skip(d.end - d.start)
			}
			return Frame{}, err
		}
		h := d.buf[d.start : d.start+HeaderSize]
		if !bytes.Equal(h[0:4], magic[:]) {
			// Drop everything up to the next possible magic.
			i := bytes.Index(d.buf[d.start+1:d.end], magic[:1])
			if i < 0 {
				d.skip(d.end - d.start)
			} else {
				d.skip(i + 1)
			}
			continue
		}
		n := int(binary.BigEndian.Uint16(h[6:8]))
		if binary.BigEndian.Uint32(h[20:24]) != crc32.Checksum(h[:20], castagnoli) ||
			Type(h[4]) < Hello || Type(h[4]) > maxType || h[5] != 0 || n > MaxPayload {
			d.skip(1)
			continue
		}
		if err := d.fill(HeaderSize + n); err != nil {
			if errors.Is(err, io.EOF) {
				d.skip(d.end - d.start)
			}
			return Frame{}, err
		}
		h = d.buf[d.start : d.start+HeaderSize]
		payload := d.buf[d.start+HeaderSize : d.start+HeaderSize+n]
		if binary.BigEndian.Uint32(h[16:20]) != crc32.Checksum(payload, castagnoli) {
			// A header whose frame was cut short: what follows it may be
			// the next frame.
			d.skip(1)
			continue
		}
		f := Frame{
			Type:    Type(h[4]),
			Session: binary.BigEndian.Uint32(h[8:12]),
			Stream:  binary.BigEndian.Uint32(h[12:16]),
			Payload: bytes.Clone(payload),
		}
		if f.Payload == nil {
			f.Payload = []byte{}
		}
		d.start += HeaderSize + n
		return f, nil
	}
}

// Preamble returns the bytes a sender writes before it starts a session:
// enough zeros to complete any frame a reader may be waiting for (a header
// whose payload was cut off), so that the reader fails that frame's
// checksum and finds the frames that follow.
func Preamble() []byte { return make([]byte, MaxFrame) }
