package datastore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// wantLimit checks that err is a *LimitError for limit, with max and got.
func wantLimit(t *testing.T, what string, err error, limit string, maxN, got int) {
	t.Helper()
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrLimit) || le.Limit != limit || le.Max != maxN || le.Got != got {
		t.Fatalf("%s = %v, want a LimitError: %d %s, at most %d", what, err, got, limit, maxN)
	}
	want := fmt.Sprintf("datastore limit exceeded: %d %s, at most %d", got, limit, maxN)
	if msg := err.Error(); len(msg) < len(want) || msg[len(msg)-len(want):] != want {
		t.Errorf("%s: message %q does not end with %q", what, msg, want)
	}
}

func keyValues(prefix string, n int) []KeyValue {
	kvs := make([]KeyValue, n)
	for i := range kvs {
		kvs[i] = kv(fmt.Sprintf("%s.k%d", prefix, i), "1")
	}
	return kvs
}

// TestLimitKeys: a write of more than MaxKeysPerWrite keys is refused, and
// so is one that would take a transaction past MaxKeysPerTransaction;
// replacing keys a full transaction holds is not.
func TestLimitKeys(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	over := keyValues("settings.a", MaxKeysPerWrite+1)
	wantLimit(t, "live SetMany", s.SetMany(ctx, over, Live()), LimitKeysPerWrite, MaxKeysPerWrite, MaxKeysPerWrite+1)
	wantLimit(t, "pending SetMany", s.SetMany(ctx, over, Pending("t")), LimitKeysPerWrite, MaxKeysPerWrite, MaxKeysPerWrite+1)
	full := keyValues("settings.a", MaxKeysPerTransaction)
	if err := s.SetMany(ctx, full, Pending("t")); err != nil {
		t.Fatalf("SetMany of %d keys: %v", len(full), err)
	}
	err := s.Set(ctx, MustKey(DataKey, "settings.b"), []byte("1"), Pending("t"))
	wantLimit(t, "SetMany into a full transaction", err, LimitKeysPerTransaction, MaxKeysPerTransaction, MaxKeysPerTransaction+1)
	if err := s.SetMany(ctx, full[:10], Pending("t")); err != nil {
		t.Errorf("SetMany replacing keys of a full transaction: %v", err)
	}
	if err := s.Delete(ctx, full[0].Key, Pending("t")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, MustKey(DataKey, "settings.b"), []byte("1"), Pending("t")); err != nil {
		t.Errorf("SetMany after a key of the full transaction was deleted: %v", err)
	}
	// Deleted rather than committed: a checkpoint of 10,000 files is slow.
	if _, err := s.DeleteTransaction(ctx, "t"); err != nil {
		t.Fatal(err)
	}
}

// TestLimitPendingTransactions: a new transaction past the limit is
// refused; committing, deleting or emptying a transaction frees a slot,
// and writes into an existing transaction go on.
func TestLimitPendingTransactions(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	one := func(tx string) error { return s.Set(ctx, MustKey(DataKey, "settings."+tx), []byte("1"), Pending(tx)) }
	for i := range MaxPendingTransactions {
		if err := one(fmt.Sprintf("t%d", i)); err != nil {
			t.Fatalf("transaction %d: %v", i, err)
		}
	}
	wantLimit(t, "a new transaction past the limit", one("extra"), LimitPendingTxs, MaxPendingTransactions, MaxPendingTransactions+1)
	if _, err := s.Get(ctx, MustKey(DataKey, "settings.extra"), Pending("extra")); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused transaction holds a value: %v", err)
	}
	if err := s.Set(ctx, MustKey(DataKey, "settings.more"), []byte("1"), Pending("t0")); err != nil {
		t.Errorf("write into an existing transaction at the limit: %v", err)
	}
	for _, free := range []struct {
		name string
		do   func() error
	}{
		{"commit", func() error { _, err := s.Commit(ctx, "t1"); return err }},
		{"delete transaction", func() error { _, err := s.DeleteTransaction(ctx, "t2"); return err }},
		{"delete its only key", func() error { return s.Delete(ctx, MustKey(DataKey, "settings.t3"), Pending("t3")) }},
	} {
		if err := free.do(); err != nil {
			t.Fatalf("%s: %v", free.name, err)
		}
		if err := one("after-" + strings.ReplaceAll(free.name, " ", "-")); err != nil {
			t.Errorf("new transaction after a %s: %v", free.name, err)
		}
		wantLimit(t, "the next one after "+free.name, one("extra"), LimitPendingTxs, MaxPendingTransactions, MaxPendingTransactions+1)
	}
	// Delete them all, so that Close does not write 1,024 directories.
	txs, err := s.ListTransactions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tx := range txs {
		if _, err := s.DeleteTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
}
