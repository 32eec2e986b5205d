package datastore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// CommitPrefix: only pending keys starting with it are committed, as upstream.
const CommitPrefix = "settings."

// journal is the commit intent written before a multi-key commit touches
// live. Values are embedded, so rolling forward needs nothing else.
type journal struct {
	Transaction string          `json:"transaction"`
	Values      []journalRecord `json:"values"`
}

type journalRecord struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// Commit moves the settings.* keys of transaction tx into live and deletes
// the transaction. It returns the committed keys, sorted; none (and no
// error) if the transaction has no settings keys.
//
// The commit is atomic across keys: a multi-key commit first writes a
// durable journal holding every value, then replaces each live file
// atomically, fsyncs them, and removes the journal. After a crash, Open
// replays a journal it finds, so either all keys are live or none are.
// A single-key commit is one atomic rename and needs no journal.
func (s *Store) Commit(ctx context.Context, tx string) ([]Key, error) {
	if err := CheckTransactionName(tx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, Pending(tx)); err != nil {
		return nil, err
	}
	var kvs []KeyValue
	for name, kv := range s.pending[tx] {
		if strings.HasPrefix(name, CommitPrefix) {
			kvs = append(kvs, kv)
		}
	}
	if len(kvs) == 0 {
		return nil, nil
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].Key.name < kvs[j].Key.name })
	if err := s.checkConflicts(kvs, Live()); err != nil {
		return nil, fmt.Errorf("commit transaction %q: %w", tx, err)
	}
	j := journal{Transaction: tx}
	for _, kv := range kvs {
		j.Values = append(j.Values, journalRecord{Key: kv.Key.name, Value: kv.Value})
	}
	if err := s.applyJournal(j, len(kvs) > 1); err != nil {
		return nil, fmt.Errorf("commit transaction %q: %w", tx, err)
	}
	keys := make([]Key, len(kvs))
	for i, kv := range kvs {
		s.live[kv.Key.name] = kv
		keys[i] = kv.Key
	}
	delete(s.pending, tx)
	return keys, nil
}

// applyJournal makes j's values live. With useJournal, the journal file is
// made durable first and removed (durably) last.
func (s *Store) applyJournal(j journal, useJournal bool) error {
	jpath := filepath.Join(s.dir, journalName)
	if useJournal {
		data, err := json.Marshal(j)
		if err != nil {
			return fmt.Errorf("encode commit journal: %w", err)
		}
		if err := writeAtomic(s.dir, jpath, data, true); err != nil {
			return fmt.Errorf("write commit journal: %w", err)
		}
	}
	root := filepath.Join(s.dir, liveDir)
	dirs := map[string]bool{}
	for _, r := range j.Values {
		k, err := ParseKey(DataKey, r.Key)
		if err != nil {
			return fmt.Errorf("apply journal: %w: %w", ErrCorrupt, err)
		}
		path := dataPath(root, k)
		dir := filepath.Dir(path)
		if err := mkdirAll(s.dir, dir, true); err != nil {
			return err
		}
		tmp, err := writeTemp(dir, r.Value, true)
		if err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("rename %q to %q: %w", tmp, path, err)
		}
		dirs[dir] = true
	}
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	if useJournal {
		if err := os.Remove(jpath); err != nil {
			return fmt.Errorf("remove commit journal: %w", err)
		}
		if err := syncDir(s.dir); err != nil {
			return err
		}
	}
	// The transaction is committed; its pending tree is now garbage. It is
	// removed after the journal so a crash in between cannot lose data.
	if err := os.RemoveAll(filepath.Join(s.dir, pendingDir, encodeSegment(j.Transaction))); err != nil {
		return fmt.Errorf("remove pending transaction %q: %w", j.Transaction, err)
	}
	return nil
}

// rollForward finishes a commit interrupted by a crash.
func (s *Store) rollForward() error {
	data, err := os.ReadFile(filepath.Join(s.dir, journalName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read commit journal: %w", err)
	}
	var j journal
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("decode commit journal %q: %w: %w", filepath.Join(s.dir, journalName), ErrCorrupt, err)
	}
	if err := CheckTransactionName(j.Transaction); err != nil {
		return fmt.Errorf("decode commit journal: %w: %w", ErrCorrupt, err)
	}
	if err := s.applyJournal(j, true); err != nil {
		return fmt.Errorf("roll forward commit of %q: %w", j.Transaction, err)
	}
	return nil
}

// DeleteTransaction discards transaction tx and returns its settings.*
// keys, sorted. A transaction that does not exist yields no keys.
func (s *Store) DeleteTransaction(ctx context.Context, tx string) ([]Key, error) {
	if err := CheckTransactionName(tx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, Pending(tx)); err != nil {
		return nil, err
	}
	var keys []Key
	for name, kv := range s.pending[tx] {
		if strings.HasPrefix(name, CommitPrefix) {
			keys = append(keys, kv.Key)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].name < keys[j].name })
	if err := os.RemoveAll(s.treeDir(Pending(tx))); err != nil {
		return nil, fmt.Errorf("delete transaction %q: %w", tx, err)
	}
	delete(s.pending, tx)
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
		if len(t) > 0 {
			out = append(out, tx)
		}
	}
	sort.Strings(out)
	return out, nil
}
