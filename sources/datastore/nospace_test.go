package datastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// smallExt4 makes a 16 MiB ext4 file system with PRIVATE's options (plus
// mkfsArgs), mounts it through a loop device on a new directory and
// returns the directory; it is unmounted at cleanup.
func smallExt4(t *testing.T, mkfsArgs ...string) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatalf("this test must run as root to mount a file system (it runs as root in CI)")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-q", "-F", "-b", "4096", "-i", "4096", "-I", "256"}, mkfsArgs...)
	for _, cmd := range [][]string{append(append([]string{"mkfs.ext4"}, args...), img), {"mount", "-o", "loop", img, mnt}} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd, " "), err, out)
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
		}
	})
	return mnt
}

// storeOn creates a datastore under dir and opens it; the caller closes
// it.
func storeOn(t *testing.T, dir string) (*Store, string) {
	t.Helper()
	cur, err := Create(filepath.Join(dir, "datastore"), "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), cur)
	if err != nil {
		t.Fatal(err)
	}
	return s, cur
}

// filler fills the file system of dir with one file until a write fails
// with ENOSPC, and returns it; free(n) gives n bytes back.
type filler struct {
	t *testing.T
	f *os.File
}

func fill(t *testing.T, dir string) *filler {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	for _, chunk := range []int{1 << 20, 4096, 1} {
		for {
			_, err := f.Write(make([]byte, chunk))
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return &filler{t, f}
}

// free gives n bytes back; n < 0 removes the whole file.
func (fl *filler) free(n int64) {
	fl.t.Helper()
	st, err := fl.f.Stat()
	if err != nil {
		fl.t.Fatal(err)
	}
	if n < 0 || n > st.Size() {
		n = st.Size()
	}
	if err := fl.f.Truncate(st.Size() - n); err != nil {
		fl.t.Fatal(err)
	}
}

// wantNoSpace checks that err says the store is out of space, without a
// path in the message (API clients see it).
func wantNoSpace(t *testing.T, what string, err error, dir string) {
	t.Helper()
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("%s = %v, want ErrNoSpace (ENOSPC)", what, err)
	}
	if strings.Contains(err.Error(), dir) {
		t.Errorf("%s: message %q names the store's directory", what, err)
	}
}

// bigValue is a value larger than the log padding written ahead;
// midValue one that fits there, but needs 10 blocks as a file.
var (
	bigValue = []byte(`"` + strings.Repeat("v", 3*padStep) + `"`)
	midValue = []byte(`"` + strings.Repeat("m", 40000) + `"`)
)

// TestNoSpace fills a real ext4 file system under an open store: writes
// fail with ErrNoSpace and change nothing, reads go on, a refused live
// write does not block a later one, a refused commit keeps its
// transaction, transactions can still be deleted once ordinary writes no
// longer fit (the log's reserve), a checkpoint is deferred, a reopen on
// the full file system serves everything from the log, and once space is
// freed writes and checkpoints work again.
func TestNoSpace(t *testing.T) {
	mnt := smallExt4(t)
	s, cur := storeOn(t, mnt)
	ctx := context.Background()
	var err error
	defer func() { s.Close() }()
	steps := []func() error{
		func() error { return s.Set(ctx, MustKey(DataKey, "settings.a"), []byte("1"), Live()) },
		func() error { return s.Set(ctx, MustKey(DataKey, "settings.k"), []byte("1"), Pending("keep")) },
		func() error { return s.Set(ctx, MustKey(DataKey, "settings.d"), []byte("1"), Pending("drop")) },
		func() error { return s.Checkpoint(ctx) },
		// Only in the log from here on.
		func() error { return s.Set(ctx, MustKey(DataKey, "settings.b"), []byte("2"), Live()) },
		func() error { return s.Set(ctx, MustKey(DataKey, "settings.t"), []byte("3"), Pending("t")) },
		// 10 blocks for the checkpoint to find, more than deletions free.
		func() error { return s.Set(ctx, MustKey(DataKey, "settings.u"), midValue, Pending("t")) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	fl := fill(t, mnt)

	wantNoSpace(t, "pending Set", s.Set(ctx, MustKey(DataKey, "settings.big"), bigValue, Pending("u")), s.Dir())
	if txs, _ := s.ListTransactions(ctx); fmt.Sprint(txs) != "[drop keep t]" {
		t.Errorf("transactions after a refused write into a new one = %v", txs)
	}
	wantNoSpace(t, "live Set", s.Set(ctx, MustKey(DataKey, "settings.x"), bigValue, Live()), s.Dir())
	// Without the logical state set back, settings.x would still be
	// there for the conflict check.
	if err := s.Set(ctx, MustKey(DataKey, "settings.x.y"), []byte("4"), Live()); err != nil {
		t.Fatalf("small live Set after a refused one: %v", err)
	}
	if err := s.Set(ctx, MustKey(DataKey, "settings.t"), bigValue, Pending("t")); err == nil {
		t.Fatal("big pending Set succeeded on a full file system")
	}
	if err := s.Set(ctx, MustKey(DataKey, "settings.big"), bigValue, Pending("keep")); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("big pending Set = %v", err)
	}
	wantPending(t, s, "keep", map[string]string{"settings.k": "1"})
	// Use up what ordinary records may use, so that the deletion below
	// needs the reserve.
	var n int
	for n = 0; ; n++ {
		err := s.Set(ctx, MustKey(DataKey, "settings.fill"), []byte(fmt.Sprint(n)), Pending("t"))
		if errors.Is(err, ErrNoSpace) {
			break
		}
		if err != nil || n > 10000 {
			t.Fatalf("filling the log: write %d: %v", n, err)
		}
	}
	t.Logf("the log took %d small writes before it was full", n)
	if _, err := s.Commit(ctx, "t"); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Commit on a full file system = %v, want ErrNoSpace", err)
	}
	wantPending(t, s, "t", map[string]string{"settings.t": "3", "settings.u": string(midValue), "settings.fill": fmt.Sprint(n - 1)})
	if _, err := s.DeleteTransaction(ctx, "drop"); err != nil {
		t.Fatalf("DeleteTransaction on a full file system: %v", err)
	}
	if err := s.Delete(ctx, MustKey(DataKey, "settings.fill"), Pending("t")); err != nil {
		t.Fatalf("pending Delete on a full file system: %v", err)
	}
	wantLive(t, s, map[string]string{"settings.a": "1", "settings.b": "2", "settings.x.y": "4"})
	if err := s.Checkpoint(ctx); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Checkpoint on a full file system = %v, want ErrNoSpace", err)
	}
	if err := s.c.failure(); err != nil {
		t.Fatalf("the store failed: %v", err)
	}

	// A restart on the full file system.
	s.crash()
	s, err = Open(ctx, cur)
	if err != nil {
		t.Fatalf("Open on a full file system: %v", err)
	}
	if r := s.Recovery(); !errors.Is(r.CheckpointErr, ErrNoSpace) {
		t.Errorf("Recovery().CheckpointErr = %v, want ErrNoSpace", r.CheckpointErr)
	}
	wantLive(t, s, map[string]string{"settings.a": "1", "settings.b": "2", "settings.x.y": "4"})
	wantPending(t, s, "t", map[string]string{"settings.t": "3", "settings.u": string(midValue)})
	wantPending(t, s, "keep", map[string]string{"settings.k": "1"})
	if txs, _ := s.ListTransactions(ctx); fmt.Sprint(txs) != "[keep t]" {
		t.Errorf("transactions after the restart = %v, want [keep t]", txs)
	}
	if _, err := s.DeleteTransaction(ctx, "keep"); err != nil {
		t.Fatalf("DeleteTransaction after the restart: %v", err)
	}
	wantNoSpace(t, "Set after the restart", s.Set(ctx, MustKey(DataKey, "settings.big"), bigValue, Live()), s.Dir())
	// A clean restart: Close cannot checkpoint either, and says so.
	if err := s.Close(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Close on a full file system = %v, want ErrNoSpace", err)
	}
	if s, err = Open(ctx, cur); err != nil {
		t.Fatalf("Open after Close on a full file system: %v", err)
	}
	wantLive(t, s, map[string]string{"settings.a": "1", "settings.b": "2", "settings.x.y": "4"})
	wantPending(t, s, "keep", map[string]string{})

	// Space again.
	fl.free(-1)
	if err := s.Set(ctx, MustKey(DataKey, "settings.big"), bigValue, Live()); err != nil {
		t.Fatalf("Set once space is free: %v", err)
	}
	if _, err := s.Commit(ctx, "t"); err != nil {
		t.Fatalf("Commit once space is free: %v", err)
	}
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatalf("Checkpoint once space is free: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, cur)
	if r := s.Recovery(); r.Records != 0 || r.CheckpointErr != nil {
		t.Errorf("Recovery() after a clean Close = %+v", r)
	}
	wantLive(t, s, map[string]string{"settings.a": "1", "settings.b": "2", "settings.x.y": "4", "settings.t": "3", "settings.u": string(midValue), "settings.big": string(bigValue)})
	if txs, _ := s.ListTransactions(ctx); len(txs) != 0 {
		t.Errorf("transactions at the end = %v, want none", txs)
	}
}

// TestNoSpaceTornWrite: a record written past the log's zero padding
// that runs out of space part way (which the padding prevents on ext4; a
// copy-on-write file system could do it) leaves no torn record: the log
// is cut back to its last whole record, so later records follow it and
// the log replays whole.
func TestNoSpaceTornWrite(t *testing.T) {
	mnt := smallExt4(t)
	s, cur := storeOn(t, mnt)
	ctx := context.Background()
	if err := s.Set(ctx, MustKey(DataKey, "settings.a"), []byte("1"), Live()); err != nil {
		t.Fatal(err)
	}
	fl := fill(t, mnt)
	fl.free(8192) // room for part of the next record
	before, _ := os.ReadFile(filepath.Join(s.Dir(), walName))
	s.c.padded = 1 << 30 // the next write goes past the end of the file
	wantNoSpace(t, "Set", s.Set(ctx, MustKey(DataKey, "settings.big"), bigValue, Live()), s.Dir())
	after, _ := os.ReadFile(filepath.Join(s.Dir(), walName))
	if got, want := bytes.TrimRight(after, "\x00"), bytes.TrimRight(before, "\x00"); !bytes.Equal(got, want) {
		t.Errorf("log after the refused write: %d bytes before the padding, want the %d of its records", len(got), len(want))
	}
	if err := s.Set(ctx, MustKey(DataKey, "settings.b"), []byte("2"), Live()); err != nil {
		t.Fatalf("small Set after the refused one: %v", err)
	}
	s.crash()
	s = openT(t, cur)
	if r := s.Recovery(); r.Records != 2 || r.DiscardedBytes != 0 {
		t.Errorf("Recovery() = %+v, want 2 records and nothing discarded", r)
	}
	wantLive(t, s, map[string]string{"settings.a": "1", "settings.b": "2"})
}
