package datastore

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// CommitPrefix: only pending keys starting with it are committed, as upstream.
const CommitPrefix = "settings."

// Commit moves the settings.* keys of transaction tx into live and deletes
// the transaction. It returns the committed keys, sorted; none (and no
// error) if the transaction has no settings keys.
//
// The commit is one record of the write-ahead log holding every value and
// the deletion of the transaction, so it is atomic across keys: after a
// crash at any point either every key is live and the transaction gone,
// or nothing is live and the transaction is as it was. Commit returns once
// the record is durable (one fdatasync, shared with concurrent writers)
// and visible to readers. The files of live/ and pending/ follow at the
// next checkpoint.
func (s *Store) Commit(ctx context.Context, tx string) ([]Key, error) {
	if err := CheckTransactionName(tx); err != nil {
		return nil, err
	}
	s.opMu.RLock()
	defer s.opMu.RUnlock()
	l := s.txLock(tx)
	l.Lock()
	defer l.Unlock()
	req, keys, err := s.prepareCommit(ctx, tx)
	if err != nil || req == nil {
		return nil, err
	}
	if err := <-req.done; err != nil {
		// Refused (ErrNoSpace) or failed: the transaction stays.
		return nil, fmt.Errorf("commit transaction %q: %w", tx, err)
	}
	s.mu.Lock()
	delete(s.pending, tx)
	s.mu.Unlock()
	return keys, nil
}

// prepareCommit checks the commit of tx, queues its record and updates
// the logical state. The transaction leaves memory once the record is
// durable; writes to the same name wait for that (they need the stripe)
// and then start a new transaction. The caller holds opMu and tx's
// stripe.
func (s *Store) prepareCommit(ctx context.Context, tx string) (*walRequest, []Key, error) {
	if err := s.checkWrite(ctx, Pending(tx)); err != nil {
		return nil, nil, err
	}
	var kvs []KeyValue
	if pt := s.pendingTree(tx); pt != nil {
		for name, kv := range pt.values {
			if strings.HasPrefix(name, CommitPrefix) {
				kvs = append(kvs, kv)
			}
		}
	}
	if len(kvs) == 0 {
		return nil, nil, nil
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].Key.name < kvs[j].Key.name })
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.checkConflicts(kvs, nil); err != nil {
		return nil, nil, fmt.Errorf("commit transaction %q: %w", tx, err)
	}
	rec := walRecord{tx: tx, ops: make([]walOp, len(kvs), len(kvs)+1)}
	keys := make([]Key, len(kvs))
	for i, kv := range kvs {
		rec.ops[i] = walOp{kind: opSetData, data: kv.Key, value: kv.Value}
		keys[i] = kv.Key
	}
	rec.ops = append(rec.ops, walOp{kind: opDropPending})
	if err := checkRecord(rec); err != nil {
		return nil, nil, fmt.Errorf("commit transaction %q: %w", tx, err)
	}
	s.applyLogical(rec.ops)
	return s.enqueue(rec), keys, nil
}

// DeleteTransaction discards transaction tx and returns its settings.*
// keys, sorted. A transaction that does not exist yields no keys. The
// deletion is a pending record (see SetMany for its durability).
func (s *Store) DeleteTransaction(ctx context.Context, tx string) ([]Key, error) {
	if err := CheckTransactionName(tx); err != nil {
		return nil, err
	}
	s.opMu.RLock()
	defer s.opMu.RUnlock()
	l := s.txLock(tx)
	l.Lock()
	defer l.Unlock()
	if err := s.checkWrite(ctx, Pending(tx)); err != nil {
		return nil, err
	}
	pt := s.pendingTree(tx)
	if pt == nil {
		return nil, nil
	}
	var keys []Key
	for name, kv := range pt.values {
		if strings.HasPrefix(name, CommitPrefix) {
			keys = append(keys, kv.Key)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].name < keys[j].name })
	if err := s.logPending(walRecord{tx: tx, ops: []walOp{{kind: opDropPending}}}); err != nil {
		return nil, fmt.Errorf("delete transaction %q: %w", tx, err)
	}
	s.mu.Lock()
	delete(s.pending, tx)
	s.mu.Unlock()
	return keys, nil
}

// ListTransactions returns the names of transactions with pending data,
// sorted.
func (s *Store) ListTransactions(ctx context.Context) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, Live()); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(s.pending))
	for tx, t := range s.pending {
		if len(t.values) > 0 {
			out = append(out, tx)
		}
	}
	sort.Strings(out)
	return out, nil
}
