package flock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLock: a second open file description of the same file cannot take
// the lock while the first holds it (TryLock fails, Lock waits and
// reports the wait once), and gets it as soon as the first closes.
func TestLock(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	first, second := open(), open()
	if err := TryLock(first); err != nil {
		t.Fatal(err)
	}
	if err := TryLock(second); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock while held = %v, want ErrLocked", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	waits := 0
	if err := Lock(ctx, second, func() { waits++ }); !errors.Is(err, ErrLocked) || !errors.Is(err, context.DeadlineExceeded) || waits != 1 {
		t.Fatalf("Lock while held = %v after %d wait calls; want ErrLocked and the deadline, one call", err, waits)
	}
	go func() { time.Sleep(30 * time.Millisecond); first.Close() }()
	if err := Lock(context.Background(), second, nil); err != nil {
		t.Fatalf("Lock after the holder closed = %v", err)
	}
	// A directory locks too (the updater's metadata cache).
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := TryLock(d); err != nil {
		t.Fatalf("TryLock of a directory = %v", err)
	}
}

// TestLockGrace: a holder that lets go within Grace is waited for; one
// that keeps the lock makes LockGrace fail with ErrLocked after Grace.
func TestLockGrace(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	holder, waiter := open(), open()
	if err := TryLock(holder); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := LockGrace(t.Context(), waiter); !errors.Is(err, ErrLocked) {
		t.Fatalf("LockGrace while held = %v, want ErrLocked", err)
	}
	if waited := time.Since(start); waited < Grace {
		t.Errorf("LockGrace gave up after %v, before the grace of %v", waited, Grace)
	}
	time.AfterFunc(Grace/10, func() { holder.Close() })
	if err := LockGrace(t.Context(), waiter); err != nil {
		t.Fatalf("LockGrace with a holder that lets go within the grace = %v", err)
	}
}
