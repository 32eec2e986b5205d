package datastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loggedState makes a store write a log as it does in service, then stops
// it as a crash would, and returns its current link, its directory, the
// log and the offset of each record. The records:
//
//	0 live set settings.l1      (fdatasync)
//	1-3 pending sets in "p"     (no fdatasync)
//	4 live set settings.l2      (fdatasync: makes 1-4 durable)
//	5-7 pending sets in "q"     (no fdatasync: durable field = end of 4)
func loggedState(t *testing.T) (string, string, []byte, []int) {
	t.Helper()
	ctx := context.Background()
	s, cur := newStore(t)
	steps := []func() error{
		func() error { return s.Set(ctx, MustKey(DataKey, "settings.l1"), []byte("1"), Live()) },
	}
	for i := range 3 {
		steps = append(steps, func() error {
			return s.Set(ctx, MustKey(DataKey, fmt.Sprintf("settings.p%d", i)), []byte(`"`+strings.Repeat("p", 100)+`"`), Pending("p"))
		})
	}
	steps = append(steps, func() error { return s.Set(ctx, MustKey(DataKey, "settings.l2"), []byte("2"), Live()) })
	for i := range 3 {
		steps = append(steps, func() error {
			return s.Set(ctx, MustKey(DataKey, fmt.Sprintf("settings.q%d", i)), []byte(`"`+strings.Repeat("q", 100)+`"`), Pending("q"))
		})
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	s.crash()
	data, err := os.ReadFile(filepath.Join(s.Dir(), walName))
	if err != nil {
		t.Fatal(err)
	}
	var offs []int
	var durable []uint64
	data = bytes.TrimRight(data, "\x00") // the padding
	for off := headerLen; off < len(data); {
		r, n, err := decodeRecord(data[off:], logV2)
		if err != nil {
			t.Fatalf("log made by the store: record at %d: %v", off, err)
		}
		offs = append(offs, off)
		durable = append(durable, r.durable)
		off += n
	}
	if len(offs) != len(steps) {
		t.Fatalf("log holds %d records, want %d", len(offs), len(steps))
	}
	for i := range offs {
		w := uint64(offs[1]) // the end of record 0
		switch {
		case i == 0:
			w = uint64(headerLen)
		case i >= 5:
			w = uint64(offs[5]) // the end of record 4
		}
		if durable[i] != w {
			t.Fatalf("record %d claims the log durable up to %d, want %d", i, durable[i], w)
		}
	}
	return cur, s.Dir(), data, offs
}

func writeLog(t *testing.T, dir string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, walName), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReplayCorruption: damage to a record that a later record shows was
// durable is refused with ErrCorrupt naming the log and the offset, and
// the log is left exactly as it was.
func TestReplayCorruption(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		record int // damaged record
		proof  int // the record that proves it was durable
		damage func(b []byte)
		why    string
	}{
		{"bit flip in a live record", 0, 1, func(b []byte) { b[20] ^= 0x08 }, "record checksum mismatch"},
		{"bit flip in a synced pending record", 2, 5, func(b []byte) { b[40] ^= 0x01 }, "record checksum mismatch"},
		{"bit flip in a length", 3, 5, func(b []byte) { b[1] ^= 0x01 }, "record checksum mismatch"},
		{"zeroed record", 4, 5, func(b []byte) { clear(b) }, "record checksum mismatch"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cur, dir, data, offs := loggedState(t)
			off := offs[tt.record]
			tt.damage(data[off:offs[tt.record+1]])
			writeLog(t, dir, data)
			_, err := Open(context.Background(), cur)
			path := filepath.Join(dir, walName)
			for _, want := range []string{
				fmt.Sprintf("open write-ahead log %q: datastore corrupt: the record at byte offset %d is damaged (%s)", path, off, tt.why),
				fmt.Sprintf("but the valid record at byte offset %d (sequence number %d)", offs[tt.proof], tt.proof+1),
				"the log is left as it is",
			} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("Open = %v, want an error containing %q", err, want)
				}
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Open = %v, want ErrCorrupt", err)
			}
			if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, data) {
				t.Errorf("log changed by the refused Open (%v)", err)
			}
			// Refused again, the same way, and the lock was released.
			if _, err2 := Open(context.Background(), cur); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("second Open = %v, want the same error", err2)
			}
		})
	}
}

// TestReplayPowerLoss: what a crash or a power loss can leave is accepted:
// a record cut anywhere in the part of the log that was never fdatasynced,
// and an unsynced record lost (zeros, as a page that never reached the
// disk reads) while later unsynced records survived.
func TestReplayPowerLoss(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		edit    func(data []byte, offs []int) []byte
		records int // replayed
	}{
		{"cut inside record 5", func(b []byte, o []int) []byte { return b[:o[5]+30] }, 5},
		{"cut inside the last record", func(b []byte, o []int) []byte { return b[:len(b)-1] }, 7},
		{"record 5 lost, 6 and 7 kept", func(b []byte, o []int) []byte { clear(b[o[5]:o[6]]); return b }, 5},
		{"record 6 lost, 7 kept", func(b []byte, o []int) []byte { clear(b[o[6]:o[7]]); return b }, 6},
		{"records 5-6 lost in the middle of a page", func(b []byte, o []int) []byte { clear(b[o[5]+10 : o[7]-5]); return b }, 5},
		{"bit flip in the unsynced record 5", func(b []byte, o []int) []byte { b[o[5]+30] ^= 1; return b }, 5},
		{"zeros after the end", func(b []byte, o []int) []byte { return append(b, make([]byte, 4096)...) }, 8},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cur, dir, data, offs := loggedState(t)
			edited := tt.edit(bytes.Clone(data), offs)
			writeLog(t, dir, edited)
			s := openT(t, cur)
			r := s.Recovery()
			kept := len(data)
			if tt.records < len(offs) {
				kept = offs[tt.records]
			}
			// Zeros at the end are padding, not a torn tail.
			discarded := max(len(bytes.TrimRight(edited, "\x00"))-kept, 0)
			if r.Records != tt.records || r.DiscardedBytes != int64(discarded) {
				t.Errorf("Recovery() = %+v, want %d records and %d discarded bytes", r, tt.records, discarded)
			}
			wantLive(t, s, map[string]string{"settings.l1": "1", "settings.l2": "2"})
			wantQ := map[string]string{}
			for i := range max(tt.records-5, 0) {
				wantQ[fmt.Sprintf("settings.q%d", i)] = `"` + strings.Repeat("q", 100) + `"`
			}
			wantPending(t, s, "q", wantQ)
		})
	}
}

// TestReplayVersion1: a log written by an older version (header PTRLWAL1,
// records without a durable offset) still replays, ends at its first
// damaged record as it always did, and is replaced by an empty version 2
// log.
func TestReplayVersion1(t *testing.T) {
	t.Parallel()
	cur, dir := crashState(t, nil)
	recs := []walRecord{
		{seq: 1, ops: []walOp{setOp("settings.a", "1")}},
		{seq: 2, tx: "t", ops: []walOp{{kind: opSetPending, data: MustKey(DataKey, "settings.b"), value: []byte("2")}}},
		{seq: 9, ops: []walOp{setOp("settings.c", "3")}}, // breaks the sequence: the end
		{seq: 10, ops: []walOp{setOp("settings.d", "4")}},
	}
	log := []byte(logV1.header())
	for _, r := range recs {
		log = appendRecord(log, r, logV1)
	}
	writeLog(t, dir, log)
	s := openT(t, cur)
	wantLive(t, s, map[string]string{"settings.a": "1"})
	wantPending(t, s, "t", map[string]string{"settings.b": "2"})
	if r := s.Recovery(); r.Records != 2 {
		t.Errorf("Recovery() = %+v, want 2 records", r)
	}
	wantEmptyLog(t, dir, "PTRLWAL2")
}
