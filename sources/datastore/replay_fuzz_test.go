package datastore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// storeContents is everything an open store holds, by canonical names.
type storeContents struct {
	Live    map[string]string
	Meta    map[string]string // "<data key> <meta key>"
	Pending map[string]map[string]string
}

// contents reads every value of s and checks that it is one the store
// could have written: keys parse to themselves and values are canonical.
func contents(t *testing.T, s *Store) storeContents {
	t.Helper()
	ctx := context.Background()
	check := func(kv KeyValue) {
		if k, err := ParseKey(DataKey, kv.Key.Name()); err != nil || !k.Equal(kv.Key) || k.Name() != kv.Key.Name() {
			t.Fatalf("key %q does not parse to itself: %v", kv.Key.Name(), err)
		}
		if v, err := CanonicalValue(kv.Value); err != nil || !bytes.Equal(v, kv.Value) {
			t.Fatalf("value of %q is not canonical: %q (%v)", kv.Key.Name(), kv.Value, err)
		}
	}
	c := storeContents{Live: map[string]string{}, Meta: map[string]string{}, Pending: map[string]map[string]string{}}
	kvs, err := s.Values(ctx, "", Live())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		check(kv)
		c.Live[kv.Key.Name()] = string(kv.Value)
	}
	md, err := s.ListMetadata(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range md {
		check(KeyValue{Key: m.Data, Value: m.Value})
		c.Meta[m.Data.Name()+" "+m.Meta.Name()] = string(m.Value)
	}
	txs, err := s.ListTransactions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tx := range txs {
		kvs, err := s.Values(ctx, "", Pending(tx))
		if err != nil {
			t.Fatal(err)
		}
		c.Pending[tx] = map[string]string{}
		for _, kv := range kvs {
			check(kv)
			c.Pending[tx][kv.Key.Name()] = string(kv.Value)
		}
	}
	return c
}

// framedLog turns b into a version 2 log: b is a sequence of u16 lengths
// each followed by that many bytes, and each piece becomes one record with
// a valid length and checksum, so that the fuzzer reaches the payload
// decoder and the replay of whole records.
func framedLog(b []byte) []byte {
	log := []byte(logV2.header())
	for len(b) >= 2 {
		n := min(int(binary.LittleEndian.Uint16(b)), len(b)-2)
		log = append(log, appendRecordRaw(b[2:2+n])...)
		b = b[2+n:]
	}
	return log
}

// unframe is the inverse of framedLog for one record's payload.
func unframe(payloads ...[]byte) []byte {
	var b []byte
	for _, p := range payloads {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(p)))
		b = append(b, p...)
	}
	return b
}

// FuzzReplay builds a log from the fuzz input (as it is, or as framed
// records) and opens a store on it. Open must not panic; it either
// refuses the log as corrupt and leaves it as it was, or opens a store
// whose keys and values are ones the store could have written and which,
// closed and opened again, holds the same.
func FuzzReplay(f *testing.F) {
	for _, v := range []logVersion{logV1, logV2} {
		log := []byte(v.header())
		var payloads [][]byte
		for i, r := range sampleRecords(v) {
			r.seq = uint64(i + 1)
			r.durable = 0
			log = appendRecord(log, r, v)
			payloads = append(payloads, appendRecord(nil, r, logV2)[recordHeaderLen:])
		}
		f.Add(log, false)
		f.Add(log[:len(log)-3], false)
		f.Add(unframe(payloads...), true)
	}
	f.Add([]byte(nil), false)
	f.Add([]byte("PTRLWAL"), false)
	f.Fuzz(func(t *testing.T, in []byte, framed bool) {
		log := in
		if framed {
			log = framedLog(in)
		}
		cur, err := Create(t.TempDir(), "1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(cur, walName)
		if err := os.WriteFile(path, log, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		s, err := Open(ctx, cur)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want a store or ErrCorrupt", err)
			}
			if after, rerr := os.ReadFile(path); rerr != nil || !bytes.Equal(after, log) {
				t.Fatalf("a refused log was changed (%v)", rerr)
			}
			return
		}
		before := contents(t, s)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s, err = Open(ctx, cur)
		if err != nil {
			t.Fatalf("second Open: %v", err)
		}
		defer s.Close()
		if after := contents(t, s); !reflect.DeepEqual(after, before) {
			t.Fatalf("contents changed by Close and Open:\n got %+v\nwant %+v", after, before)
		}
	})
}
