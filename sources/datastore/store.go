package datastore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// Sentinel errors that callers branch on.
var (
	// ErrNotFound: the key, metadata or transaction does not exist.
	ErrNotFound = errors.New("not found")
	// ErrCorrupt: the on-disk datastore is damaged or incomplete.
	ErrCorrupt = errors.New("datastore corrupt")
	// ErrLocked: another process has the datastore open.
	ErrLocked = errors.New("datastore locked by another process")
	// ErrInvalidTransaction: the transaction name is not acceptable.
	ErrInvalidTransaction = errors.New("invalid transaction name")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("datastore closed")
	// ErrConflict: a key would be both a value and a parent of values,
	// e.g. settings.a and settings.a.b.
	ErrConflict = errors.New("key conflicts with an existing key")
)

const (
	liveDir     = "live"
	pendingDir  = "pending"
	lockName    = ".lock"
	journalName = ".commit-journal"
)

// Committed selects the tree an operation reads or writes: the live tree,
// or the pending tree of one transaction. The zero value is Live.
type Committed struct {
	tx      string
	pending bool
}

// Live selects committed data.
func Live() Committed { return Committed{} }

// Pending selects the pending tree of transaction tx.
func Pending(tx string) Committed { return Committed{tx: tx, pending: true} }

// Transaction returns the transaction name, or "" for Live.
func (c Committed) Transaction() string { return c.tx }

// IsLive reports whether c selects the live tree.
func (c Committed) IsLive() bool { return !c.pending }

// KeyValue is one data key and its canonical JSON value.
type KeyValue struct {
	Key   Key
	Value []byte
}

// tree holds one live or pending tree in memory, by canonical key name.
type tree map[string]KeyValue

// Store is an open datastore. It keeps a copy of every value in memory,
// loaded by Open and updated after each durable write, so reads do no I/O.
// Store is safe for concurrent use; writes are serialised.
type Store struct {
	dir  string // the resolved versioned directory
	lock *os.File

	mu      sync.RWMutex
	closed  bool
	live    tree
	meta    map[string]map[string][]byte // data key name -> meta key name -> value
	pending map[string]tree
}

// CheckTransactionName rejects names that could escape the pending
// directory or cannot be stored as one directory name.
func CheckTransactionName(tx string) error {
	bad := func(reason string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidTransaction, tx, reason)
	}
	switch {
	case tx == "":
		return bad("cannot be empty")
	case tx == "." || tx == "..":
		return bad("cannot be '.' or '..'")
	case strings.ContainsRune(tx, '/'):
		return bad("must not contain '/'")
	case len(encodeSegment(tx)) > maxEncodedSegment:
		return bad(fmt.Sprintf("longer than %d bytes once percent-encoded", maxEncodedSegment))
	}
	for _, r := range tx {
		if r < 0x20 || r == 0x7f {
			return bad("must not contain control characters")
		}
	}
	return nil
}

// Dir returns the resolved versioned directory of the store.
func (s *Store) Dir() string { return s.dir }

func (s *Store) treeDir(c Committed) string {
	if c.IsLive() {
		return filepath.Join(s.dir, liveDir)
	}
	return filepath.Join(s.dir, pendingDir, encodeSegment(c.tx))
}

// Open opens the datastore at path (usually <base>/current), takes its
// process lock, rolls forward an interrupted commit and loads every value.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("resolve datastore path %q: %w", path, err)
	}
	if st, err := os.Stat(filepath.Join(dir, liveDir)); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("open datastore %q: %w: live datastore missing", path, ErrCorrupt)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file in %q: %w", dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("open datastore %q: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("lock datastore %q: %w", path, err)
	}
	s := &Store{dir: dir, lock: lock, meta: map[string]map[string][]byte{}, pending: map[string]tree{}}
	if err := s.rollForward(); err != nil {
		lock.Close()
		return nil, err
	}
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the process lock. The Store must not be used afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.lock.Close()
}

func (s *Store) load() error {
	live, err := s.loadTree(filepath.Join(s.dir, liveDir), true)
	if err != nil {
		return err
	}
	s.live = live
	entries, err := os.ReadDir(filepath.Join(s.dir, pendingDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read pending directory: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		tx, err := decodeSegment(e.Name())
		if err != nil || CheckTransactionName(tx) != nil {
			return fmt.Errorf("load pending transaction %q: %w: bad directory name", e.Name(), ErrCorrupt)
		}
		t, err := s.loadTree(filepath.Join(s.dir, pendingDir, e.Name()), false)
		if err != nil {
			return err
		}
		s.pending[tx] = t
	}
	return nil
}

// loadTree walks one tree, removing leftover temp files. Metadata files
// are loaded into s.meta when withMeta is set, and ignored otherwise.
func (s *Store) loadTree(root string, withMeta bool) (tree, error) {
	t := tree{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %q: %w", path, err)
		}
		if d.IsDir() || path == root {
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, tempPrefix) {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("remove leftover temp file %q: %w", path, err)
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(name, ".") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		dataPart, metaPart, isMeta := strings.Cut(rel, ".")
		var segs []string
		for _, enc := range strings.Split(dataPart, string(filepath.Separator)) {
			seg, err := decodeSegment(enc)
			if err != nil {
				return fmt.Errorf("load %q: %w: %w", path, ErrCorrupt, err)
			}
			segs = append(segs, seg)
		}
		key, err := KeyFromSegments(DataKey, segs)
		if err != nil {
			return fmt.Errorf("load %q: %w: %w", path, ErrCorrupt, err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %q: %w", path, err)
		}
		if !json.Valid(raw) {
			return fmt.Errorf("load %q: %w: value is not JSON", path, ErrCorrupt)
		}
		if !isMeta {
			t[key.name] = KeyValue{Key: key, Value: raw}
			return nil
		}
		if !withMeta {
			return nil
		}
		metaName, err := decodeSegment(metaPart)
		if err != nil {
			return fmt.Errorf("load %q: %w: %w", path, ErrCorrupt, err)
		}
		mk, err := KeyFromSegments(MetaKey, []string{metaName})
		if err != nil {
			return fmt.Errorf("load %q: %w: %w", path, ErrCorrupt, err)
		}
		if s.meta[key.name] == nil {
			s.meta[key.name] = map[string][]byte{}
		}
		s.meta[key.name][mk.name] = raw
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (s *Store) check(ctx context.Context, c Committed) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed {
		return ErrClosed
	}
	if !c.IsLive() {
		return CheckTransactionName(c.tx)
	}
	return nil
}

func (s *Store) treeFor(c Committed) tree {
	if c.IsLive() {
		return s.live
	}
	return s.pending[c.tx]
}

// Get returns the value of a data key, or ErrNotFound. The returned slice
// must not be modified.
func (s *Store) Get(ctx context.Context, key Key, c Committed) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, c); err != nil {
		return nil, err
	}
	kv, ok := s.treeFor(c)[key.name]
	if !ok {
		return nil, fmt.Errorf("get %q: %w", key.name, ErrNotFound)
	}
	return kv.Value, nil
}

// List returns the data keys whose dotted name starts with prefix (plain
// string match, as upstream), sorted by name.
func (s *Store) List(ctx context.Context, prefix string, c Committed) ([]Key, error) {
	kvs, err := s.Values(ctx, prefix, c)
	if err != nil {
		return nil, err
	}
	keys := make([]Key, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.Key
	}
	return keys, nil
}

// Values returns the keys and values whose dotted name starts with prefix,
// sorted by name. A transaction that does not exist yields no values.
func (s *Store) Values(ctx context.Context, prefix string, c Committed) ([]KeyValue, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(ctx, c); err != nil {
		return nil, err
	}
	var out []KeyValue
	for name, kv := range s.treeFor(c) {
		if strings.HasPrefix(name, prefix) {
			out = append(out, kv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.name < out[j].Key.name })
	return out, nil
}

// Set writes one value; see SetMany.
func (s *Store) Set(ctx context.Context, key Key, value []byte, c Committed) error {
	return s.SetMany(ctx, []KeyValue{{Key: key, Value: value}}, c)
}

// SetMany writes values into the live tree or a transaction. Every key and
// value is checked before anything is written. Live writes are durable
// (fsync) and each value is replaced atomically; pending writes are atomic
// but not fsynced, since transactions are discarded at boot.
func (s *Store) SetMany(ctx context.Context, kvs []KeyValue, c Committed) error {
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, c); err != nil {
		return err
	}
	if err := s.checkConflicts(canon, c); err != nil {
		return err
	}
	root := s.treeDir(c)
	for _, kv := range canon {
		if err := writeAtomic(s.dir, dataPath(root, kv.Key), kv.Value, c.IsLive()); err != nil {
			return fmt.Errorf("set %q: %w", kv.Key.name, err)
		}
		t := s.treeFor(c)
		if t == nil {
			t = tree{}
			s.pending[c.tx] = t
		}
		t[kv.Key.name] = kv
	}
	return nil
}

// Delete removes a data key. A missing key is not an error.
func (s *Store) Delete(ctx context.Context, key Key, c Committed) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx, c); err != nil {
		return err
	}
	root := s.treeDir(c)
	if err := removeFile(root, dataPath(root, key), c.IsLive()); err != nil {
		return fmt.Errorf("delete %q: %w", key.name, err)
	}
	delete(s.treeFor(c), key.name)
	return nil
}

// checkConflicts rejects a key that is a parent or a child of a value in
// the target tree, in live (where a commit will write it) or in the batch.
func (s *Store) checkConflicts(kvs []KeyValue, c Committed) error {
	trees := []tree{s.live}
	if !c.IsLive() {
		trees = append(trees, s.pending[c.tx])
	}
	batch := tree{}
	trees = append(trees, batch)
	for _, kv := range kvs {
		for _, t := range trees {
			for _, p := range kv.Key.prefixes()[:len(kv.Key.segments)-1] {
				if _, ok := t[p.name]; ok {
					return fmt.Errorf("set %q: %w %q", kv.Key.name, ErrConflict, p.name)
				}
			}
			child := kv.Key.name + "."
			for name := range t {
				if strings.HasPrefix(name, child) {
					return fmt.Errorf("set %q: %w %q", kv.Key.name, ErrConflict, name)
				}
			}
		}
		batch[kv.Key.name] = kv
	}
	return nil
}
