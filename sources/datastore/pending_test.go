package datastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func wantPending(t *testing.T, s *Store, tx string, want map[string]string) {
	t.Helper()
	kvs, err := s.Values(context.Background(), "", Pending(tx))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range kvs {
		got[kv.Key.Name()] = string(kv.Value)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pending %q = %v, want %v", tx, got, want)
	}
}

// wantPendingFiles checks the files under pending/<tx>/ against want
// (relative path -> content); a nil want means the directory is absent.
func wantPendingFiles(t *testing.T, dir, tx string, want map[string]string) {
	t.Helper()
	root := filepath.Join(dir, pendingDir, encodeSegment(tx))
	got := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			got[filepath.ToSlash(rel)] = string(raw)
		}
		return nil
	})
	if want == nil {
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pending/%s: %v, %v; want it absent", tx, got, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("walk pending/%s: %v", tx, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pending/%s files = %v, want %v", tx, got, want)
	}
}

func kv(name, value string) KeyValue { return KeyValue{MustKey(DataKey, name), []byte(value)} }

// TestPendingReplay: pending writes, transaction deletions and commits
// that are only in the log (the process was killed before any checkpoint)
// come back at Open, in memory and as files.
func TestPendingReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cur := newStore(t)
	dir := s.Dir()
	steps := []func() error{
		// "kept": two writes and a delete, never committed.
		func() error {
			return s.SetMany(ctx, []KeyValue{kv("settings.a", "1"), kv("settings.b.c", `"x"`)}, Pending("kept"))
		},
		func() error { return s.Set(ctx, MustKey(DataKey, "settings.d"), []byte("4"), Pending("kept")) },
		func() error { return s.Delete(ctx, MustKey(DataKey, "settings.a"), Pending("kept")) },
		// "redo": deleted, then written again under the same name.
		func() error { return s.Set(ctx, MustKey(DataKey, "settings.old"), []byte("1"), Pending("redo")) },
		func() error { _, err := s.DeleteTransaction(ctx, "redo"); return err },
		func() error { return s.Set(ctx, MustKey(DataKey, "settings.new"), []byte("2"), Pending("redo")) },
		// "gone": committed, so its pending tree disappears.
		func() error {
			return s.SetMany(ctx, []KeyValue{kv("settings.g", "7"), kv("other.x", "8")}, Pending("gone"))
		},
		func() error { _, err := s.Commit(ctx, "gone"); return err },
	}
	if err := s.SetMany(ctx, nil, Pending("empty")); err != nil {
		t.Fatalf("SetMany of nothing: %v", err)
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	for _, tx := range []string{"kept", "redo", "gone"} {
		wantPendingFiles(t, dir, tx, nil) // nothing checkpointed yet
	}
	s.crash()
	s2 := openT(t, cur)
	if r := s2.Recovery(); r.Records != len(steps) {
		t.Errorf("Recovery().Records = %d, want %d", r.Records, len(steps))
	}
	wantPending(t, s2, "kept", map[string]string{"settings.b.c": `"x"`, "settings.d": "4"})
	wantPending(t, s2, "redo", map[string]string{"settings.new": "2"})
	wantPending(t, s2, "gone", map[string]string{})
	wantLive(t, s2, map[string]string{"settings.g": "7"})
	if txs, _ := s2.ListTransactions(ctx); !reflect.DeepEqual(txs, []string{"kept", "redo"}) {
		t.Errorf("ListTransactions = %v, want [kept redo]", txs)
	}
	wantPendingFiles(t, dir, "kept", map[string]string{"settings/b/c": `"x"`, "settings/d": "4"})
	wantPendingFiles(t, dir, "redo", map[string]string{"settings/new": "2"})
	wantPendingFiles(t, dir, "gone", nil)
}

// TestPendingCheckpointed: a transaction already on disk (checkpointed)
// is changed, deleted or committed through the log only; after a crash
// the files follow the log.
func TestPendingCheckpointed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cur := newStore(t)
	dir := s.Dir()
	for _, tx := range []string{"edit", "drop", "commit"} {
		if err := s.SetMany(ctx, []KeyValue{kv("settings."+tx+".a", "1"), kv("settings."+tx+".b", "2")}, Pending(tx)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	wantPendingFiles(t, dir, "edit", map[string]string{"settings/edit/a": "1", "settings/edit/b": "2"})
	if err := s.Delete(ctx, MustKey(DataKey, "settings.edit.a"), Pending("edit")); err != nil {
		t.Fatal(err)
	}
	// A value replaces the directory that held settings.edit.b.
	if err := s.Delete(ctx, MustKey(DataKey, "settings.edit.b"), Pending("edit")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, MustKey(DataKey, "settings.edit"), []byte("3"), Pending("edit")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteTransaction(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, "commit"); err != nil {
		t.Fatal(err)
	}
	// Files still show the checkpoint until the next one.
	wantPendingFiles(t, dir, "drop", map[string]string{"settings/drop/a": "1", "settings/drop/b": "2"})
	s.crash()
	s2 := openT(t, cur)
	wantPending(t, s2, "edit", map[string]string{"settings.edit": "3"})
	wantPendingFiles(t, dir, "edit", map[string]string{"settings/edit": "3"})
	wantPendingFiles(t, dir, "drop", nil)
	wantPendingFiles(t, dir, "commit", nil)
	wantLive(t, s2, map[string]string{"settings.commit.a": "1", "settings.commit.b": "2"})
}

// TestPendingTornTail: a crash that tears the log inside a pending write
// or a commit loses that record whole and nothing before it.
func TestPendingTornTail(t *testing.T) {
	t.Parallel()
	set := walRecord{seq: 1, tx: "t", ops: []walOp{
		{kind: opSetPending, data: MustKey(DataKey, "settings.a"), value: []byte("1")},
		{kind: opSetPending, data: MustKey(DataKey, "settings.b"), value: []byte("1")},
	}}
	set2 := walRecord{seq: 2, tx: "t", ops: []walOp{
		{kind: opSetPending, data: MustKey(DataKey, "settings.a"), value: []byte("2")},
		{kind: opSetPending, data: MustKey(DataKey, "settings.b"), value: []byte("2")},
	}}
	commit := walRecord{seq: 3, tx: "t", ops: []walOp{setOp("settings.a", "2"), setOp("settings.b", "2"), {kind: opDropPending}}}
	full := slicesConcat(encode(set), encode(set2), encode(commit))
	len1 := len(encode(set))
	len2 := len1 + len(encode(set2))
	for _, tt := range []struct {
		name        string
		cut         int
		wantPending map[string]string
		wantLive    map[string]string
	}{
		{"inside the first write", len1 - 1, map[string]string{}, map[string]string{}},
		{"inside the second write", len2 - 5, map[string]string{"settings.a": "1", "settings.b": "1"}, map[string]string{}},
		{"inside the commit", len(full) - 1, map[string]string{"settings.a": "2", "settings.b": "2"}, map[string]string{}},
		{"after the commit", len(full), map[string]string{}, map[string]string{"settings.a": "2", "settings.b": "2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cur, dir := crashState(t, nil)
			appendLog(t, dir, full[:tt.cut])
			s := openT(t, cur)
			wantPending(t, s, "t", tt.wantPending)
			wantLive(t, s, tt.wantLive)
		})
	}
}

// TestPendingFailure: a pending write whose record cannot be logged
// fails, leaves the transaction as it was, and breaks the store.
func TestPendingFailure(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.Set(ctx, MustKey(DataKey, "settings.a"), []byte("1"), Pending("t")); err != nil {
		t.Fatal(err)
	}
	s.c.f.Close()
	if err := s.Set(ctx, MustKey(DataKey, "settings.a"), []byte("2"), Pending("t")); !errors.Is(err, ErrFailed) {
		t.Fatalf("pending Set with a broken log = %v, want ErrFailed", err)
	}
	wantPending(t, s, "t", map[string]string{"settings.a": "1"})
	if _, err := s.DeleteTransaction(ctx, "t"); !errors.Is(err, ErrFailed) {
		t.Errorf("DeleteTransaction after the failure = %v, want ErrFailed", err)
	}
	if err := s.Checkpoint(ctx); !errors.Is(err, ErrFailed) {
		t.Errorf("Checkpoint after the failure = %v, want ErrFailed", err)
	}
}

// TestPendingNotSynced: pending writes cost no fdatasync; a commit does.
func TestPendingNotSynced(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	for i := range 5 {
		if err := s.Set(ctx, MustKey(DataKey, "settings.a"), []byte{'0' + byte(i)}, Pending("t")); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.c.batches.Load(); n != 0 {
		t.Errorf("fdatasyncs after 5 pending writes = %d, want 0", n)
	}
	if _, err := s.Commit(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if n := s.c.batches.Load(); n != 1 {
		t.Errorf("fdatasyncs after the commit = %d, want 1", n)
	}
	log, err := os.ReadFile(filepath.Join(s.Dir(), walName))
	if err != nil {
		t.Fatal(err)
	}
	if recs, _, _, err := readRecords(log, logV2); err != nil || len(recs) != 6 {
		t.Errorf("log holds %d records (%v), want 6", len(recs), err)
	}
	if !bytes.HasPrefix(log, []byte(newLog.header())) {
		t.Errorf("log header = %q", log[:8])
	}
}

// TestCheckpointMany: a checkpoint of more than bulkSyncFiles files (made
// durable with one syncfs) writes them all, live and pending, and removes
// a deleted transaction's many files.
func TestCheckpointMany(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, cur := newStore(t)
	var live, pending []KeyValue
	wantL, wantP := map[string]string{}, map[string]string{}
	for i := range 2 * bulkSyncFiles {
		live = append(live, kv(fmt.Sprintf("settings.g%d.l%d", i%7, i), fmt.Sprint(i)))
		pending = append(pending, kv(fmt.Sprintf("settings.g%d.p%d", i%5, i), fmt.Sprint(i)))
		wantL[live[i].Key.Name()] = fmt.Sprint(i)
		wantP[pending[i].Key.Name()] = fmt.Sprint(i)
	}
	for _, step := range []func() error{
		func() error { return s.SetMany(ctx, live, Live()) },
		func() error { return s.SetMany(ctx, pending, Pending("p")) },
		func() error { return s.SetMany(ctx, pending, Pending("gone")) },
		func() error { return s.Checkpoint(ctx) },
		func() error { _, err := s.DeleteTransaction(ctx, "gone"); return err },
		func() error { return s.Checkpoint(ctx) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	wantPendingFiles(t, s.Dir(), "gone", nil)
	s.crash()
	s2 := openT(t, cur)
	if r := s2.Recovery(); r.Records != 0 {
		t.Errorf("Recovery() = %+v, want nothing in the log", r)
	}
	wantLive(t, s2, wantL)
	wantPending(t, s2, "p", wantP)
}
