package datastore

import (
	"context"
	"fmt"
)

// Set writes one value; see SetMany.
func (s *Store) Set(ctx context.Context, key Key, value []byte, c Committed) error {
	return s.SetMany(ctx, []KeyValue{{Key: key, Value: value}}, c)
}

// SetMany writes values into the live tree or a transaction. Every key and
// value is checked before anything is written, and the write is one logged
// record, atomic across its keys. A live write is durable when SetMany
// returns. A pending write is in the log (written, not fdatasynced) when
// SetMany returns: it survives a crash of the process, and power loss
// once a later live write's fdatasync or a checkpoint covers it.
//
// A live write that was queued waits for the log even if ctx is cancelled.
//
// Limits: at most MaxKeysPerWrite keys per call, MaxKeysPerTransaction
// keys in a transaction and MaxPendingTransactions transactions; a write
// beyond one fails with a *LimitError.
func (s *Store) SetMany(ctx context.Context, kvs []KeyValue, c Committed) error {
	if len(kvs) > MaxKeysPerWrite {
		return &LimitError{Limit: LimitKeysPerWrite, Max: MaxKeysPerWrite, Got: len(kvs)}
	}
	canon := make([]KeyValue, len(kvs))
	for i, kv := range kvs {
		if kv.Key.typ != DataKey || len(kv.Key.segments) == 0 {
			return fmt.Errorf("set %q: %w: not a data key", kv.Key.name, ErrInvalidKey)
		}
		v, err := CanonicalValue(kv.Value)
		if err != nil {
			return fmt.Errorf("set %q: %w", kv.Key.name, err)
		}
		canon[i] = KeyValue{Key: kv.Key, Value: v}
	}
	if c.IsLive() {
		ops := make([]walOp, len(canon))
		for i, kv := range canon {
			ops[i] = walOp{kind: opSetData, data: kv.Key, value: kv.Value}
		}
		return s.logLive(ctx, ops, "set")
	}
	s.opMu.RLock()
	defer s.opMu.RUnlock()
	l := s.txLock(c.tx)
	l.Lock()
	defer l.Unlock()
	if err := s.checkWrite(ctx, c); err != nil {
		return err
	}
	if len(canon) == 0 {
		return nil // a record needs at least one operation
	}
	pt := s.pendingTree(c.tx)
	if n := pt.size() + newKeys(pt, canon); n > MaxKeysPerTransaction {
		return fmt.Errorf("set in transaction %q: %w", c.tx, &LimitError{Limit: LimitKeysPerTransaction, Max: MaxKeysPerTransaction, Got: n})
	}
	rec := walRecord{tx: c.tx, ops: make([]walOp, len(canon))}
	for i, kv := range canon {
		rec.ops[i] = walOp{kind: opSetPending, data: kv.Key, value: kv.Value}
	}
	if err := checkRecord(rec); err != nil {
		return fmt.Errorf("set in transaction %q: %w", c.tx, err)
	}
	s.wmu.Lock()
	err := s.checkConflicts(canon, pt)
	created := false
	if err == nil && pt == nil {
		pt, err = s.newPendingTree(c.tx)
		created = err == nil
	}
	var req *walRequest
	if err == nil {
		req = s.enqueue(rec)
	}
	s.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("set in transaction %q: %w", c.tx, err)
	}
	if err := <-req.done; err != nil {
		if created {
			s.mu.Lock()
			delete(s.pending, c.tx)
			s.mu.Unlock()
		}
		return fmt.Errorf("set in transaction %q: %w", c.tx, err)
	}
	s.mu.Lock()
	for _, kv := range canon {
		pt.set(kv)
	}
	s.mu.Unlock()
	return nil
}

// Delete removes a data key. A missing key is not an error.
func (s *Store) Delete(ctx context.Context, key Key, c Committed) error {
	if c.IsLive() {
		return s.logLive(ctx, []walOp{{kind: opDeleteData, data: key}}, "delete")
	}
	s.opMu.RLock()
	defer s.opMu.RUnlock()
	l := s.txLock(c.tx)
	l.Lock()
	defer l.Unlock()
	if err := s.checkWrite(ctx, c); err != nil {
		return err
	}
	pt := s.pendingTree(c.tx)
	if pt == nil {
		return nil
	}
	if _, ok := pt.values[key.name]; !ok {
		return nil
	}
	if err := s.logPending(walRecord{tx: c.tx, ops: []walOp{{kind: opDeletePending, data: key}}}); err != nil {
		return fmt.Errorf("delete %q: %w", key.name, err)
	}
	s.mu.Lock()
	pt.delete(key.name)
	if len(pt.values) == 0 {
		delete(s.pending, c.tx) // frees its slot among MaxPendingTransactions
	}
	s.mu.Unlock()
	return nil
}

// logPending queues a pending record and waits until it is in the log.
// The caller holds opMu and the stripe of rec.tx.
func (s *Store) logPending(rec walRecord) error {
	s.wmu.Lock()
	req := s.enqueue(rec)
	s.wmu.Unlock()
	return <-req.done
}

// logLive writes ops to the live tree as one logged record and waits until
// the record is durable and visible. Operations that change nothing (a
// delete of something absent) are dropped; if none is left, nothing is
// logged.
func (s *Store) logLive(ctx context.Context, ops []walOp, verb string) error {
	s.opMu.RLock()
	defer s.opMu.RUnlock()
	if err := s.checkWrite(ctx, Live()); err != nil {
		return err
	}
	s.wmu.Lock()
	req, err := s.prepareLive(ops, verb)
	s.wmu.Unlock()
	if err != nil || req == nil {
		return err
	}
	return <-req.done
}

// prepareLive checks ops against the logical state, queues their record
// and applies them to the logical state. The caller holds wmu.
func (s *Store) prepareLive(ops []walOp, verb string) (*walRequest, error) {
	var sets []KeyValue
	kept := ops[:0:0]
	for _, op := range ops {
		switch op.kind {
		case opSetData:
			sets = append(sets, KeyValue{Key: op.data, Value: op.value})
		case opDeleteData:
			if _, ok := s.nextLive.values[op.data.name]; !ok {
				continue
			}
		case opSetMeta:
			if err := s.checkMetaParent(op.data); err != nil {
				return nil, fmt.Errorf("set metadata %q on %q: %w", op.meta.name, op.data.name, err)
			}
		case opDeleteMeta:
			if !s.nextMeta[op.data.name][op.meta.name] {
				continue
			}
		}
		kept = append(kept, op)
	}
	if err := s.checkConflicts(sets, nil); err != nil {
		return nil, err
	}
	if len(kept) == 0 {
		return nil, nil
	}
	rec := walRecord{ops: kept}
	if err := checkRecord(rec); err != nil {
		return nil, fmt.Errorf("%s: %w", verb, err)
	}
	s.applyLogical(kept)
	return s.enqueue(rec), nil
}

// applyLogical applies ops to the logical state. The caller holds wmu.
func (s *Store) applyLogical(ops []walOp) {
	for _, op := range ops {
		switch op.kind {
		case opSetData:
			s.nextLive.set(KeyValue{Key: op.data, Value: op.value})
		case opDeleteData:
			s.nextLive.delete(op.data.name)
		case opSetMeta:
			if s.nextMeta[op.data.name] == nil {
				s.nextMeta[op.data.name] = map[string]bool{}
				s.metaKeys.add(op.data)
			}
			s.nextMeta[op.data.name][op.meta.name] = true
		case opDeleteMeta:
			delete(s.nextMeta[op.data.name], op.meta.name)
			if m, ok := s.nextMeta[op.data.name]; ok && len(m) == 0 {
				delete(s.nextMeta, op.data.name)
				s.metaKeys.remove(op.data)
			}
		}
	}
}

// checkConflicts rejects a key that is a parent or a child of a value in
// live (the logical state, where a commit will write it), in the pending
// tree pt (nil for a live write) or earlier in kvs, and a key that has
// metadata below it (its directory holds the metadata files). Each key
// costs O(depth) lookups in the prefix counts of those trees. The caller
// holds wmu, and the stripe of pt's transaction.
func (s *Store) checkConflicts(kvs []KeyValue, pt *indexedTree) error {
	batch := newIndexedTree(make(tree, len(kvs)))
	for _, kv := range kvs {
		for _, t := range [...]*indexedTree{s.nextLive, pt, batch} {
			if t == nil {
				continue
			}
			if name, ok := t.conflict(kv.Key); ok {
				return fmt.Errorf("set %q: %w %q", kv.Key.name, ErrConflict, name)
			}
		}
		if s.metaKeys[kv.Key.name] > 0 {
			return fmt.Errorf("set %q: %w: metadata on %q", kv.Key.name, ErrConflict, firstBelow(s.nextMeta, kv.Key.name))
		}
		batch.set(kv)
	}
	return nil
}

// checkMetaParent rejects metadata on a key below a live value: its file
// would have to live inside that value's file. The caller holds wmu.
func (s *Store) checkMetaParent(data Key) error {
	for name := range data.parents() {
		if _, ok := s.nextLive.values[name]; ok {
			return fmt.Errorf("%w %q", ErrConflict, name)
		}
	}
	return nil
}
