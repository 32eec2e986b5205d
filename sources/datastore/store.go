package datastore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/petrel-os/petrel/sources/outfile"
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
	// ErrFailed: a write to the write-ahead log or the live tree failed;
	// the store refuses further writes until it is reopened.
	ErrFailed = errors.New("datastore write failed")
	// ErrNoSpace: the file system is full. The write was refused and
	// nothing changed; the store goes on (reads, deleting transactions,
	// and writes once there is space again).
	ErrNoSpace = errors.New("datastore out of space")
)

const (
	liveDir    = "live"
	pendingDir = "pending"
	lockName   = ".lock"
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
// loaded by Open and updated after each logged write, so reads do no I/O.
//
// Every write (commits, live sets and deletes, metadata, and pending
// writes into transactions) goes through a write-ahead log owned by a
// committer goroutine, which makes concurrent live writes durable with one
// shared fdatasync (see docs/datastore.md). The files of live/ and
// pending/ are brought up to date at checkpoints and by Close.
// Store is safe for concurrent use. Close stops the committer.
type Store struct {
	dir      string // the resolved versioned directory
	lock     *os.File
	c        *committer
	recovery Recovery

	// Locking. opMu: every write holds it shared for its whole duration;
	// Close takes it exclusively to wait for them. txMu: a stripe per
	// transaction name serialises the operations on one transaction, from
	// its checks until its record is logged and its tree updated.
	// wmu: the logical live state, held briefly: under it a writer checks
	// its change against every logged write, durable or not, queues its
	// log record and updates the logical state.
	opMu     sync.RWMutex
	txMu     [64]sync.Mutex
	wmu      sync.Mutex
	nextLive *indexedTree               // logical live values
	nextMeta map[string]map[string]bool // logical metadata: data key -> meta key
	metaKeys prefixCount                // parents of the data keys in nextMeta

	// mu guards the visible state, which readers use. Live values and
	// metadata change only once durable, by the committer, in log order.
	// The pending map and trees change under mu and the transaction's
	// stripe (once the write's record is logged), so a stripe holder may
	// read its own tree without mu.
	mu      sync.RWMutex
	closed  bool // set under opMu and mu
	live    tree
	meta    map[string]map[string][]byte // data key name -> meta key name -> value
	pending map[string]*indexedTree

	liveVersion atomic.Uint64 // incremented under mu when live or meta change
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

// LiveVersion returns a number that changes whenever live values or
// metadata change. A caller may cache what it derives from the live state
// under the version it read before reading that state: the state it read
// is at least as new as the version.
func (s *Store) LiveVersion() uint64 { return s.liveVersion.Load() }

// Checkpoint writes every logged change into the files of live/ and
// pending/, fsyncs them and empties the log, as the committer does on its
// own when the log grows or goes idle, and Close does. Afterwards the
// directory shows the state of every write that returned before the call,
// for tools that read the files.
func (s *Store) Checkpoint(ctx context.Context) error {
	s.opMu.RLock()
	defer s.opMu.RUnlock()
	if err := s.checkWrite(ctx, Live()); err != nil {
		return err
	}
	reply := make(chan error, 1)
	select {
	case s.c.flush <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := <-reply; err != nil {
		return fmt.Errorf("checkpoint datastore: %w", err)
	}
	return nil
}

func (s *Store) treeDir(c Committed) string {
	if c.IsLive() {
		return filepath.Join(s.dir, liveDir)
	}
	return filepath.Join(s.dir, pendingDir, encodeSegment(c.tx))
}

// Open opens the datastore at path (usually <base>/current), takes its
// process lock, replays the write-ahead log, loads every value and starts
// the committer goroutine, which Close stops.
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
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, fileMode)
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
	s := &Store{dir: dir, lock: lock, c: newCommitter(dir), meta: map[string]map[string][]byte{}, pending: map[string]*indexedTree{}}
	err = s.tightenTop()
	var replayed []walRecord
	if err == nil {
		replayed, err = s.openLog()
	}
	if err == nil {
		err = s.load()
	}
	if err == nil {
		// The checkpoint could not write the files: memory gets the
		// log's changes on top of them.
		for _, r := range replayed {
			s.applyMemory(r)
			s.applyPending(r)
		}
	}
	if err != nil {
		if s.c.f != nil {
			s.c.f.Close()
		}
		lock.Close()
		return nil, err
	}
	s.resetLogical()
	go s.runCommitter()
	return s, nil
}

// Close waits for queued writes, checkpoints the log, stops the committer
// and releases the process lock. It returns the error that broke the store
// (ErrFailed), or the checkpoint's (ErrNoSpace: the log keeps everything
// for the next Open), if any. Later calls fail with ErrClosed.
func (s *Store) Close() error {
	s.opMu.Lock()
	if s.closed {
		s.opMu.Unlock()
		return nil
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.opMu.Unlock()
	close(s.c.stop)
	<-s.c.done
	err := s.c.closeErr
	if ferr := s.c.failure(); ferr != nil {
		err = ferr // writes acknowledged before it are in the log; Open replays them
	}
	if cerr := s.c.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close write-ahead log: %w", cerr)
	}
	if cerr := s.lock.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("release datastore lock: %w", cerr)
	}
	return err
}

// resetLogical sets the logical live state to the visible one. The caller
// holds wmu, or is Open.
func (s *Store) resetLogical() {
	live := make(tree, len(s.live))
	for name, kv := range s.live {
		live[name] = kv
	}
	s.nextLive = newIndexedTree(live)
	s.nextMeta = make(map[string]map[string]bool, len(s.meta))
	s.metaKeys = prefixCount{}
	for data, metas := range s.meta {
		s.nextMeta[data] = map[string]bool{}
		for m := range metas {
			s.nextMeta[data][m] = true
		}
		s.metaKeys.add(MustKey(DataKey, data))
	}
}

// tightenTop restricts the permissions of the versioned directory and of
// the entries directly in it; load does the trees below live/ and
// pending/.
func (s *Store) tightenTop() error {
	st, err := os.Stat(s.dir)
	if err != nil {
		return fmt.Errorf("stat datastore directory: %w", err)
	}
	if err := tighten(s.dir, st.Mode()); err != nil {
		return err
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("read datastore directory: %w", err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stat %q: %w", e.Name(), err)
		}
		if err := tighten(filepath.Join(s.dir, e.Name()), info.Mode()); err != nil {
			return err
		}
	}
	return nil
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
		if len(t) > 0 {
			s.pending[tx] = newIndexedTree(t)
		}
	}
	return nil
}

// loadTree walks one tree, removing leftover temporary files (outfile's
// names start with a dot, which no encoded segment does) and restricting
// permissions. Metadata files are loaded into s.meta when withMeta is
// set, and ignored otherwise.
func (s *Store) loadTree(root string, withMeta bool) (tree, error) {
	t := tree{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %q: %w", path, err)
		}
		if d.Type()&os.ModeSymlink == 0 {
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("stat %q: %w", path, err)
			}
			if err := tighten(path, info.Mode()); err != nil {
				return err
			}
		}
		if d.IsDir() || path == root {
			return nil
		}
		name := d.Name()
		if strings.HasPrefix(name, outfile.TempPrefix) {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("remove leftover temp file %q: %w", path, err)
			}
			return nil
		}
		if !d.Type().IsRegular() {
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

// checkWrite is check for writers, who hold opMu: it also refuses writes
// once the store has failed.
func (s *Store) checkWrite(ctx context.Context, c Committed) error {
	if err := s.check(ctx, c); err != nil {
		return err
	}
	return s.c.failure()
}

func (s *Store) treeFor(c Committed) tree {
	if c.IsLive() {
		return s.live
	}
	if t := s.pending[c.tx]; t != nil {
		return t.values
	}
	return nil
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

// txLock returns the stripe lock of transaction tx.
func (s *Store) txLock(tx string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(tx))
	return &s.txMu[h.Sum32()%uint32(len(s.txMu))]
}

// pendingTree returns the pending tree of tx, or nil. The caller holds
// tx's stripe.
func (s *Store) pendingTree(tx string) *indexedTree {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pending[tx]
}

// newPendingTree creates the empty tree of a new transaction, unless
// MaxPendingTransactions exist. Every transaction is created here, under
// wmu, so the limit holds exactly. The caller holds wmu and tx's stripe.
func (s *Store) newPendingTree(tx string) (*indexedTree, error) {
	t := newIndexedTree(nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.pending); n >= MaxPendingTransactions {
		return nil, &LimitError{Limit: LimitPendingTxs, Max: MaxPendingTransactions, Got: n + 1}
	}
	s.pending[tx] = t
	return t, nil
}
