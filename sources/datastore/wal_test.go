package datastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func setOp(key, value string) walOp {
	return walOp{kind: opSetData, data: MustKey(DataKey, key), value: []byte(value)}
}

// sampleRecords returns records of every kind, as version v encodes them
// (version 1 has no durable offset).
func sampleRecords(v logVersion) []walRecord {
	recs := []walRecord{
		{seq: 1, durable: 8, tx: "t", ops: []walOp{setOp("settings.a", "1"), setOp("settings.b.c", `"x"`)}},
		{seq: 2, durable: 1 << 20, ops: []walOp{{kind: opDeleteData, data: MustKey(DataKey, "settings.a")}}},
		{seq: 3, ops: []walOp{{kind: opSetMeta, data: MustKey(DataKey, `settings."dotted.name"`), meta: MustKey(MetaKey, "affected-services"), value: []byte(`["a","b"]`)}}},
		{seq: 1 << 40, durable: 1 << 40, tx: "tx with spaces", ops: []walOp{{kind: opDeleteMeta, data: MustKey(DataKey, "settings.n"), meta: MustKey(MetaKey, "m")}}},
		{seq: 5, durable: 300, tx: "p", ops: []walOp{{kind: opSetPending, data: MustKey(DataKey, "settings.a.b"), value: []byte(`[1,"x"]`)}, {kind: opDeletePending, data: MustKey(DataKey, "settings.c")}}},
		{seq: 6, tx: "p", ops: []walOp{{kind: opDropPending}}},
		{seq: 7, durable: 9, tx: "p", ops: []walOp{setOp("settings.a.b", "2"), {kind: opDropPending}}},
	}
	if v < logV2 {
		for i := range recs {
			recs[i].durable = 0
		}
	}
	return recs
}

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	for _, v := range []logVersion{logV1, logV2} {
		for _, r := range sampleRecords(v) {
			t.Run(fmt.Sprintf("v%d/%d", v, r.seq), func(t *testing.T) {
				t.Parallel()
				b := appendRecord(nil, r, v)
				got, n, err := decodeRecord(append(b, 0xff), v)
				if err != nil || n != len(b) {
					t.Fatalf("decodeRecord = %d, %v, want %d, nil", n, err, len(b))
				}
				if !reflect.DeepEqual(got, r) {
					t.Errorf("decodeRecord = %+v, want %+v", got, r)
				}
				for cut := range len(b) {
					if _, _, err := decodeRecord(b[:cut], v); !errors.Is(err, errShortRecord) {
						t.Fatalf("decodeRecord(first %d of %d bytes) = %v, want errShortRecord", cut, len(b), err)
					}
				}
				flipped := bytes.Clone(b)
				flipped[len(b)-1] ^= 1
				if _, _, err := decodeRecord(flipped, v); !errors.Is(err, errBadChecksum) {
					t.Errorf("decodeRecord(flipped last byte) = %v, want errBadChecksum", err)
				}
			})
		}
	}
}

// FuzzDecodeRecord checks that the decoder of either version never panics,
// and that whatever it accepts re-encodes to the same bytes (the format
// has one encoding).
func FuzzDecodeRecord(f *testing.F) {
	for _, v := range []logVersion{logV1, logV2} {
		for _, r := range sampleRecords(v) {
			f.Add(appendRecord(nil, r, v))
			f.Add(appendRecord(nil, r, v)[recordHeaderLen:])
		}
	}
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		// As found, and framed with a valid checksum so that mutations
		// reach the payload decoder.
		for _, in := range [][]byte{b, appendRecordRaw(b)} {
			for _, v := range []logVersion{logV1, logV2} {
				r, n, err := decodeRecord(in, v)
				if err != nil {
					continue
				}
				if again := appendRecord(nil, r, v); !bytes.Equal(again, in[:n]) {
					t.Fatalf("re-encoded version %d record differs:\n got %x\nwant %x", v, again, in[:n])
				}
			}
		}
	})
}

// crashState prepares a closed datastore holding a pending transaction "t"
// and returns its current link and versioned directory. Its log is empty,
// with the version 2 header that an open store's log has, so that tests
// can append version 2 records as a crashed store would have left them.
func crashState(t *testing.T, pending []KeyValue) (string, string) {
	t.Helper()
	s, cur := newStore(t)
	if len(pending) > 0 {
		if err := s.SetMany(context.Background(), pending, Pending("t")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), walName), []byte(logV2.header()), 0o600); err != nil {
		t.Fatal(err)
	}
	return cur, s.Dir()
}

// appendLog appends raw bytes to the datastore's log, as a crashed writer
// would have left them.
func appendLog(t *testing.T, dir string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, walName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func openT(t *testing.T, cur string) *Store {
	t.Helper()
	s, err := Open(context.Background(), cur)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func wantLive(t *testing.T, s *Store, want map[string]string) {
	t.Helper()
	kvs, err := s.Values(context.Background(), "", Live())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range kvs {
		got[kv.Key.Name()] = string(kv.Value)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("live = %v, want %v", got, want)
	}
}

func TestReplayTornTail(t *testing.T) {
	t.Parallel()
	good := walRecord{seq: 7, tx: "t", ops: []walOp{setOp("settings.a", "1"), setOp("settings.b.c", "2")}}
	next := walRecord{seq: 8, ops: []walOp{setOp("settings.a", "99"), setOp("settings.z", "99")}}
	nextBytes := encode(next)
	flipped := bytes.Clone(nextBytes)
	flipped[len(flipped)-3] ^= 0x40
	outOfSeq := encode(walRecord{seq: 3, ops: next.ops})
	for _, tt := range []struct {
		name string
		tail []byte
	}{
		{"short header", nextBytes[:5]},
		{"short payload", nextBytes[:len(nextBytes)-1]},
		{"bad checksum", flipped},
		{"zeros", make([]byte, 64)},
		{"sequence break", outOfSeq},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cur, dir := crashState(t, nil)
			appendLog(t, dir, append(encode(good), tt.tail...))
			s := openT(t, cur)
			wantLive(t, s, map[string]string{"settings.a": "1", "settings.b.c": "2"})
			// Zeros at the end are padding, not a torn tail.
			discarded := len(bytes.TrimRight(tt.tail, "\x00"))
			if got := s.Recovery(); got.Records != 1 || got.DiscardedBytes != int64(discarded) {
				t.Errorf("Recovery() = %+v, want 1 record, %d discarded bytes", got, discarded)
			}
			wantEmptyLog(t, dir, "PTRLWAL2")
		})
	}
}

// TestReplayPartlyApplied: the crash came after the commit record was
// durable and one of its two keys was renamed into live/.
func TestReplayPartlyApplied(t *testing.T) {
	t.Parallel()
	cur, dir := crashState(t, []KeyValue{{MustKey(DataKey, "settings.a"), []byte(`1`)}, {MustKey(DataKey, "settings.b.c"), []byte(`2`)}})
	if err := os.Rename(filepath.Join(dir, "pending", "t"), filepath.Join(dir, "pending", commitDirName(1, "t"))); err != nil {
		t.Fatal(err)
	}
	appendLog(t, dir, encode(walRecord{seq: 1, tx: "t", ops: []walOp{setOp("settings.a", "1"), setOp("settings.b.c", "2")}}))
	if err := os.MkdirAll(filepath.Join(dir, "live", "settings"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"a": "1", ".junk.123": "2"} {
		if err := os.WriteFile(filepath.Join(dir, "live", "settings", name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := openT(t, cur)
	wantLive(t, s, map[string]string{"settings.a": "1", "settings.b.c": "2"})
	if txs, _ := s.ListTransactions(context.Background()); len(txs) != 0 {
		t.Errorf("transactions after replay = %v, want none", txs)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "pending")); len(entries) != 0 {
		t.Errorf("pending/ after replay holds %v, want nothing", entries)
	}
	if _, err := os.Stat(filepath.Join(dir, "live", "settings", ".junk.123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover temp file: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "live", "settings", "b", "c"))
	if err != nil || string(raw) != "2" {
		t.Errorf("live/settings/b/c = %q, %v, want 2", raw, err)
	}
}

// TestReplayUnloggedCommit: the crash came before the commit record was
// durable; the transaction goes back to pending/ and nothing is live.
func TestReplayUnloggedCommit(t *testing.T) {
	t.Parallel()
	cur, dir := crashState(t, []KeyValue{{MustKey(DataKey, "settings.a"), []byte(`1`)}})
	if err := os.Rename(filepath.Join(dir, "pending", "t"), filepath.Join(dir, "pending", commitDirName(1, "t"))); err != nil {
		t.Fatal(err)
	}
	s := openT(t, cur)
	wantLive(t, s, map[string]string{})
	if got := s.Recovery(); !reflect.DeepEqual(got.RestoredTransactions, []string{"t"}) {
		t.Errorf("Recovery() = %+v, want transaction t restored", got)
	}
	v, err := s.Get(context.Background(), MustKey(DataKey, "settings.a"), Pending("t"))
	if err != nil || string(v) != "1" {
		t.Errorf("pending settings.a = %s, %v, want 1", v, err)
	}
}

// TestReplayOverLaterState: after a crash, live/ can already show what
// later records did; replaying the earlier ones must get past that.
func TestReplayOverLaterState(t *testing.T) {
	t.Parallel()
	cur, dir := crashState(t, nil)
	appendLog(t, dir, slicesConcat(
		encode(walRecord{seq: 1, ops: []walOp{setOp("settings.x", "1")}}),
		encode(walRecord{seq: 2, ops: []walOp{{kind: opDeleteData, data: MustKey(DataKey, "settings.x")}}}),
		encode(walRecord{seq: 3, ops: []walOp{setOp("settings.x.y", "3")}}),
		encode(walRecord{seq: 4, ops: []walOp{{kind: opDeleteData, data: MustKey(DataKey, "settings.q.r")}}}),
		encode(walRecord{seq: 5, ops: []walOp{setOp("settings.q", "5")}}),
	))
	// The state after all five records, as the kernel may have written it.
	for path, v := range map[string]string{"settings/x/y": "3", "settings/q": "5"} {
		p := filepath.Join(dir, "live", filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := openT(t, cur)
	wantLive(t, s, map[string]string{"settings.x.y": "3", "settings.q": "5"})
}

func slicesConcat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestOpenBadLog(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		log  []byte
		want string
	}{
		{"foreign header", []byte("NOTAWAL!rest"), "unknown header"},
		{"checksummed garbage", appendRecordRaw([]byte("garbage payload")), "decode log record"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cur, dir := crashState(t, nil)
			log := tt.log
			if tt.name != "foreign header" {
				log = append([]byte(newLog.header()), log...)
			}
			if err := os.WriteFile(filepath.Join(dir, walName), log, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Open(context.Background(), cur)
			if !errors.Is(err, ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Errorf("Open = %v, want ErrCorrupt mentioning %q", err, tt.want)
			}
		})
	}
}

// wantEmptyLog checks that the log in dir holds header and nothing but
// zero padding.
func wantEmptyLog(t *testing.T, dir, header string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, walName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte(header)) || len(bytes.Trim(data[headerLen:], "\x00")) != 0 {
		t.Errorf("log = %q..., %d bytes, want %q and zero padding", data[:min(len(data), 16)], len(data), header)
	}
}

// encode encodes r as a record of a version 2 log.
func encode(r walRecord) []byte { return appendRecord(nil, r, logV2) }

// appendRecordRaw frames payload with a correct length and checksum.
func appendRecordRaw(payload []byte) []byte {
	b := make([]byte, recordHeaderLen, recordHeaderLen+len(payload))
	b = append(b, payload...)
	putRecordHeader(b)
	return b
}

// crash stops s as a killed process would leave it: the committer stops
// without a checkpoint and the lock is released.
func (s *Store) crash() {
	s.opMu.Lock()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.opMu.Unlock()
	crashed := errors.New("simulated crash")
	s.c.failed.Store(&crashed)
	close(s.c.stop)
	<-s.c.done
	s.c.f.Close()
	s.lock.Close()
}

func TestLogCheckpointAndClose(t *testing.T) {
	t.Parallel()
	s, cur := newStore(t)
	ctx := context.Background()
	big := []byte(`"` + string(bytes.Repeat([]byte("v"), 60<<10)) + `"`)
	for i := range 6 { // 360 KiB > checkpointBytes
		if err := s.Set(ctx, MustKey(DataKey, fmt.Sprintf("settings.big%d", i)), big, Live()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, MustKey(DataKey, "settings.late"), []byte(`1`), Live()); !errors.Is(err, ErrClosed) {
		t.Errorf("Set after Close = %v, want ErrClosed", err)
	}
	select {
	case <-s.c.done:
	default:
		t.Error("committer goroutine still running after Close")
	}
	s2 := openT(t, cur)
	if got := s2.Recovery(); got.Records != 0 {
		t.Errorf("Recovery() after a clean Close = %+v, want nothing replayed", got)
	}
	if v, err := s2.Get(ctx, MustKey(DataKey, "settings.big5"), Live()); err != nil || !bytes.Equal(v, big) {
		t.Errorf("settings.big5 after reopen: %d bytes, %v", len(v), err)
	}
}

// TestLogWriteFailure: once the log cannot be written, the write fails,
// the store refuses further writes, and reads keep working.
func TestLogWriteFailure(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.Set(ctx, MustKey(DataKey, "settings.a"), []byte(`1`), Live()); err != nil {
		t.Fatal(err)
	}
	s.c.f.Close() // the committer's next write fails
	if err := s.Set(ctx, MustKey(DataKey, "settings.a"), []byte(`2`), Live()); !errors.Is(err, ErrFailed) {
		t.Fatalf("Set with a broken log = %v, want ErrFailed", err)
	}
	if err := s.Set(ctx, MustKey(DataKey, "settings.b"), []byte(`2`), Pending("t")); !errors.Is(err, ErrFailed) {
		t.Errorf("pending Set after the failure = %v, want ErrFailed", err)
	}
	if v, err := s.Get(ctx, MustKey(DataKey, "settings.a"), Live()); err != nil || string(v) != "1" {
		t.Errorf("Get after the failure = %s, %v, want 1", v, err)
	}
	if err := s.Close(); !errors.Is(err, ErrFailed) {
		t.Errorf("Close after the failure = %v, want ErrFailed", err)
	}
}

func TestMetadataConflicts(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	as := MustKey(MetaKey, "affected-services")
	if err := s.SetMetadata(ctx, as, MustKey(DataKey, "settings.m.n"), []byte(`["x"]`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, MustKey(DataKey, "settings.m"), []byte(`1`), Live()); !errors.Is(err, ErrConflict) {
		t.Errorf("Set(settings.m) over metadata on settings.m.n = %v, want ErrConflict", err)
	}
	if err := s.Set(ctx, MustKey(DataKey, "settings.v"), []byte(`1`), Live()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMetadata(ctx, as, MustKey(DataKey, "settings.v.w"), []byte(`["x"]`)); !errors.Is(err, ErrConflict) {
		t.Errorf("SetMetadata below the value settings.v = %v, want ErrConflict", err)
	}
	for _, del := range []func() error{
		func() error { return s.Delete(ctx, MustKey(DataKey, "settings.absent"), Live()) },
		func() error { return s.Delete(ctx, MustKey(DataKey, "settings.m"), Live()) },
		func() error { return s.DeleteMetadata(ctx, as, MustKey(DataKey, "settings.absent")) },
	} {
		if err := del(); err != nil {
			t.Errorf("delete of something absent = %v, want nil", err)
		}
	}
}

// TestGroupCommitConcurrent: many writers at once all get durable,
// visible, untorn results, and the log replays to the same state.
func TestGroupCommitConcurrent(t *testing.T) {
	t.Parallel()
	s, cur := newStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for r := range 10 {
				tx := fmt.Sprintf("w%d", w)
				kvs := []KeyValue{
					{MustKey(DataKey, fmt.Sprintf("settings.w%d.a", w)), fmt.Appendf(nil, "%d", r)},
					{MustKey(DataKey, fmt.Sprintf("settings.w%d.b.c", w)), fmt.Appendf(nil, "%d", r)},
				}
				if err := s.SetMany(ctx, kvs, Pending(tx)); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Commit(ctx, tx); err != nil {
					t.Error(err)
					return
				}
				v, err := s.Get(ctx, kvs[1].Key, Live())
				if err != nil || string(v) != fmt.Sprint(r) {
					t.Errorf("read after commit %s = %s, %v, want %d", kvs[1].Key, v, err, r)
				}
			}
		})
	}
	wg.Wait()
	want := map[string]string{}
	for w := range 8 {
		want[fmt.Sprintf("settings.w%d.a", w)] = "9"
		want[fmt.Sprintf("settings.w%d.b.c", w)] = "9"
	}
	wantLive(t, s, want)
	// Reopen without Close, as after a crash: the log alone restores it.
	s.crash()
	wantLive(t, openT(t, cur), want)
}

// TestFailureMessage: once a checkpoint fails (here a file that something
// else put where a directory goes), writers get ErrFailed with a message
// that names the file relative to the store, not by its absolute path.
func TestFailureMessage(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.Set(ctx, MustKey(DataKey, "settings.a.b"), []byte("1"), Live()); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.Dir(), "live", "settings"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), "live", "settings", "a"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(ctx); !errors.Is(err, ErrFailed) {
		t.Fatalf("Checkpoint = %v, want ErrFailed", err)
	}
	err := s.Set(ctx, MustKey(DataKey, "settings.c"), []byte("1"), Live())
	if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("Set after the failure = %v, want ErrFailed (ENOTDIR)", err)
	}
	if msg := err.Error(); strings.Contains(msg, s.Dir()) || !strings.Contains(msg, "live/settings/a/") {
		t.Errorf("message %q: want live/settings/a named without the store's directory", msg)
	}
}

// TestCloseLeavesVersion1: a cleanly closed store's empty log has the
// version 1 header, which older versions open; the next Open and its
// writes use version 2 again.
func TestCloseLeavesVersion1(t *testing.T) {
	t.Parallel()
	s, cur := newStore(t)
	ctx := context.Background()
	path := filepath.Join(s.Dir(), walName)
	if err := s.Set(ctx, MustKey(DataKey, "settings.a"), []byte("1"), Live()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "PTRLWAL1" {
		t.Fatalf("log after Close = %q, %v, want the empty version 1 log", got, err)
	}
	s = openT(t, cur)
	wantEmptyLog(t, s.Dir(), "PTRLWAL2")
	if err := s.Set(ctx, MustKey(DataKey, "settings.b"), []byte("2"), Live()); err != nil {
		t.Fatal(err)
	}
	s.crash()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if recs, _, _, err := readRecords(data, logV2); string(data[:headerLen]) != "PTRLWAL2" || err != nil || len(recs) != 1 {
		t.Errorf("log after a write = header %q, %d records, %v; want version 2 with one record", data[:headerLen], len(recs), err)
	}
	wantLive(t, openT(t, cur), map[string]string{"settings.a": "1", "settings.b": "2"})
}
