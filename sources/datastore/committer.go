package datastore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/petrel-os/petrel/sources/outfile"
)

const (
	// checkpointBytes: the committer checkpoints once the log holds this
	// much, which bounds both the log and the replay work at Open.
	checkpointBytes = 256 << 10
	// checkpointIdle: a log that stops growing is checkpointed after this.
	checkpointIdle = 2 * time.Second
	// bulkSyncFiles: a checkpoint that writes more files than this makes
	// them durable with one syncfs instead of an fsync each (on ext4, a
	// journal commit and a disk flush each: 10,000 files took minutes on a
	// busy disk, and the 44 defaults storewolf writes at a first boot
	// 0.8 s under software emulation). A host's datastore has PRIVATE to
	// itself, so the syncfs flushes nothing else; the few files of a
	// settings change keep their own fsyncs.
	bulkSyncFiles = 4
	// commitDirPrefix names a committed transaction's pending directory
	// parked by an earlier version of this package between its commit and
	// the removal of the directory: pending/.commit-<seq>-<encoded tx>.
	// Open still settles such directories (see settleCommitDirs).
	commitDirPrefix = ".commit-"
)

// walRequest is one record waiting for the committer.
type walRequest struct {
	rec  walRecord
	done chan error
}

// parkedDir is a committed transaction's pending directory left parked by
// an earlier version of this package and settled by Open; the checkpoint
// after it makes sure it is gone and fsyncs pending/ before truncating the
// log. mu keeps two removals apart.
type parkedDir struct {
	path    string
	mu      sync.Mutex
	removed bool
}

// remove deletes the directory unless that was already done.
func (p *parkedDir) remove() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed {
		return nil
	}
	if err := os.RemoveAll(p.path); err != nil {
		return fmt.Errorf("remove committed transaction directory: %w", err)
	}
	p.removed = true
	return nil
}

// committer holds the state of the log and of the goroutine that owns it.
// Fields below qmu are used only by that goroutine (or by Open and Close
// while it is not running).
type committer struct {
	dir   string // the store's directory
	qmu   sync.Mutex
	queue []*walRequest

	wake  chan struct{}   // capacity 1: "the queue is not empty"
	stop  chan struct{}   // closed by Close
	done  chan struct{}   // closed by the goroutine when it returns
	flush chan chan error // Checkpoint's requests

	failed atomic.Pointer[error] // first failure; the store refuses writes after it

	batches, records atomic.Int64 // fdatasyncs and live records logged, for benchmarks

	f       *os.File   // the log, written with pwrite at size
	version logVersion // of the log's header: new records use it
	size    int64      // bytes in the log, header included
	synced  int64      // the log is known durable up to this offset
	seq     uint64     // seq of the last record in the log
	buf     []byte
	// dirty holds, for each live or pending file changed since the last
	// checkpoint, the last logged operation on it: the checkpoint writes
	// only that. txDirty lists the pending files of dirty by transaction
	// directory, and dropped the transaction directories deleted since the
	// last checkpoint (before any later write into them in dirty).
	dirty   map[string]walOp
	txDirty map[string]map[string]struct{}
	dropped map[string]struct{}
	// parked lists the parked pending directories settled by Open.
	parked   []*parkedDir
	closeErr error // checkpoint error at Close
	// deferred is the error of the last checkpoint when it ran out of
	// space (nil otherwise); it is retried from retryAt on.
	deferred error
	retryAt  time.Time
	// padded is the size of the log file: past size it holds zeros,
	// logReserve of them beyond what ordinary records may use.
	padded int64
}

func newCommitter(dir string) *committer {
	return &committer{
		dir:     dir,
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		flush:   make(chan chan error),
		dirty:   map[string]walOp{},
		txDirty: map[string]map[string]struct{}{},
		dropped: map[string]struct{}{},
	}
}

// failure returns the error that broke the store, or nil.
func (c *committer) failure() error {
	if p := c.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail breaks the store with err. Writers get the error from then on,
// and API clients may see it, so its message names files relative to the
// store's directory.
func (c *committer) fail(err error) {
	err = fmt.Errorf("%w: %w", ErrFailed, dirless{err: err, dir: c.dir})
	c.failed.CompareAndSwap(nil, &err)
}

// dirless shows err with the store's directory cut from the paths in its
// message; errors.Is and errors.As see err.
type dirless struct {
	err error
	dir string
}

func (e dirless) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.dir+string(filepath.Separator), "")
}

func (e dirless) Unwrap() error { return e.err }

// enqueue hands rec to the committer and returns the request to wait on.
// The caller holds wmu, so records enter the queue in the order of their
// checks; the committer numbers them as it writes them.
func (s *Store) enqueue(rec walRecord) *walRequest {
	req := &walRequest{rec: rec, done: make(chan error, 1)}
	s.c.qmu.Lock()
	s.c.queue = append(s.c.queue, req)
	s.c.qmu.Unlock()
	select {
	case s.c.wake <- struct{}{}:
	default:
	}
	return req
}

// runCommitter is the committer goroutine, started by Open and stopped by
// Close. Every record queued while it was busy goes into the next batch,
// so concurrent writers share one fdatasync (group commit).
func (s *Store) runCommitter() {
	defer close(s.c.done)
	idle := time.NewTimer(checkpointIdle)
	if s.c.deferred == nil {
		idle.Stop()
	}
	defer idle.Stop()
	for {
		select {
		case <-s.c.wake:
			s.commitQueued()
			if s.c.size >= checkpointBytes || s.c.deferred != nil {
				s.checkpointOrFail(false)
			}
			if s.c.size > int64(headerLen) {
				idle.Reset(checkpointIdle)
			}
		case <-idle.C:
			s.checkpointOrFail(false)
			if s.c.deferred != nil {
				idle.Reset(checkpointIdle)
			}
		case reply := <-s.c.flush:
			s.commitQueued()
			reply <- s.checkpointOrFail(true)
		case <-s.c.stop:
			// Close stopped new writers first, so this drains the rest.
			s.commitQueued()
			if s.c.failure() == nil {
				s.c.closeErr = s.checkpointOrFail(true)
			}
			if s.c.closeErr == nil && s.c.failure() == nil {
				s.c.closeErr = s.c.closeEmpty()
			}
			return
		}
	}
}

// checkpointOrFail checkpoints, unless the store failed or (without now)
// a checkpoint that ran out of space is waiting for its retry time. A
// checkpoint that runs out of space is deferred: the log keeps every
// change, memory serves reads, and it is retried after checkpointIdle.
// Any other failure breaks the store. It returns the checkpoint's error.
func (s *Store) checkpointOrFail(now bool) error {
	if err := s.c.failure(); err != nil {
		return err
	}
	if !now && s.c.deferred != nil && time.Now().Before(s.c.retryAt) {
		return nil
	}
	// After a failed attempt the files may show any mix of the old and
	// the new state, as after a crash: write them as replay does.
	err := s.checkpoint(s.c.deferred != nil)
	switch {
	case err == nil:
		s.c.deferred = nil
	case isNoSpace(err):
		err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		s.c.deferred = err
		s.c.retryAt = time.Now().Add(checkpointIdle)
	default:
		s.c.fail(err)
		err = s.c.failure()
	}
	return err
}

// commitQueued commits batches until the queue is empty.
func (s *Store) commitQueued() {
	for {
		s.c.qmu.Lock()
		batch := s.c.queue
		s.c.queue = nil
		s.c.qmu.Unlock()
		if len(batch) == 0 {
			return
		}
		s.commitBatch(batch)
	}
}

// commitBatch appends the batch's records with one write, makes them
// durable with one fdatasync, applies their live operations to memory in
// log order (so readers see them, all keys of a record at once) and
// releases their writers. The files are written at the next checkpoint:
// until then the log is the durable copy, and memory serves every read.
//
// A batch of pending records only is written but not fdatasynced: it
// survives a crash of the process (the page cache keeps it) and becomes
// durable with the next fdatasync of the log, or the next checkpoint. The
// pending writers update their transaction in memory themselves.
//
// When the file system is full, the records that only delete pending
// data are written into the log's reserve and the others are refused
// with ErrNoSpace (see refuse); the store goes on.
func (s *Store) commitBatch(batch []*walRequest) {
	if err := s.c.failure(); err != nil {
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	written, refused, noSpace, err := s.c.writeBatch(batch)
	if err != nil {
		// The records may or may not be on disk; none was acknowledged.
		// Open replays whatever is whole.
		s.c.fail(err)
		ferr := s.c.failure()
		for _, r := range batch {
			r.done <- ferr
		}
		return
	}
	var live int64
	for _, r := range written {
		if r.rec.isLive() {
			live++
		}
	}
	if live > 0 {
		s.c.batches.Add(1)
		s.c.records.Add(live)
		s.mu.Lock()
		for _, r := range written {
			s.applyMemory(r.rec)
		}
		s.liveVersion.Add(1)
		s.mu.Unlock()
	}
	for _, r := range written {
		s.noteDirty(r.rec)
		r.done <- nil
	}
	if len(refused) > 0 {
		s.refuse(refused, noSpace)
	}
}

// refuse answers the requests of refused records with err. A live record
// changed the logical state when it was queued, and the writers queued
// after it were checked against that state; so when one is refused, so is
// every live record still queued, and the logical state is set back to
// the visible one, which is then exactly what the log holds. Pending
// records change their transaction only once written, and stay queued.
func (s *Store) refuse(refused []*walRequest, err error) {
	live := false
	for _, r := range refused {
		live = live || r.rec.isLive()
	}
	if live {
		s.wmu.Lock() // no writer can queue: the queue is stable
		s.c.qmu.Lock()
		var kept []*walRequest
		for _, r := range s.c.queue {
			if r.rec.isLive() {
				refused = append(refused, r)
			} else {
				kept = append(kept, r)
			}
		}
		s.c.queue = kept
		s.c.qmu.Unlock()
		s.mu.RLock()
		s.resetLogical()
		s.mu.RUnlock()
		s.wmu.Unlock()
	}
	for _, r := range refused {
		r.done <- err
	}
}

// isLive reports whether r changes the live tree.
func (r walRecord) isLive() bool {
	for _, op := range r.ops {
		if op.kind.isLive() {
			return true
		}
	}
	return false
}

// noteDirty records rec's operations as the latest for their files.
func (s *Store) noteDirty(rec walRecord) {
	root := filepath.Join(s.dir, liveDir)
	var txDir string
	if rec.tx != "" {
		txDir = filepath.Join(s.dir, pendingDir, encodeSegment(rec.tx))
	}
	for _, op := range rec.ops {
		switch {
		case op.kind.isLive():
			s.c.dirty[opPath(root, op)] = op
		case op.kind == opDropPending:
			for p := range s.c.txDirty[txDir] {
				delete(s.c.dirty, p)
			}
			delete(s.c.txDirty, txDir)
			s.c.dropped[txDir] = struct{}{}
		default:
			p := dataPath(txDir, op.data)
			s.c.dirty[p] = op
			if s.c.txDirty[txDir] == nil {
				s.c.txDirty[txDir] = map[string]struct{}{}
			}
			s.c.txDirty[txDir][p] = struct{}{}
		}
	}
}

func opPath(root string, op walOp) string {
	if op.kind.hasMeta() {
		return metaPath(root, op.meta, op.data)
	}
	return dataPath(root, op.data)
}

// applyMemory applies rec's live operations to the visible state. The
// caller holds s.mu.
func (s *Store) applyMemory(rec walRecord) {
	for _, op := range rec.ops {
		switch op.kind {
		case opSetData:
			s.live[op.data.name] = KeyValue{Key: op.data, Value: op.value}
		case opDeleteData:
			delete(s.live, op.data.name)
		case opSetMeta:
			if s.meta[op.data.name] == nil {
				s.meta[op.data.name] = map[string][]byte{}
			}
			s.meta[op.data.name][op.meta.name] = op.value
		case opDeleteMeta:
			delete(s.meta[op.data.name], op.meta.name)
			if len(s.meta[op.data.name]) == 0 {
				delete(s.meta, op.data.name)
			}
		}
	}
}

// applyPending applies rec's pending operations to the pending trees, as
// their writers do once a record is logged. Open uses it for records it
// could not checkpoint.
func (s *Store) applyPending(rec walRecord) {
	for _, op := range rec.ops {
		t := s.pending[rec.tx]
		switch op.kind {
		case opSetPending:
			if t == nil {
				t = newIndexedTree(nil)
				s.pending[rec.tx] = t
			}
			t.set(KeyValue{Key: op.data, Value: op.value})
		case opDeletePending:
			if t != nil {
				t.delete(op.data.name)
				if len(t.values) == 0 {
					delete(s.pending, rec.tx)
				}
			}
		case opDropPending:
			delete(s.pending, rec.tx)
		}
	}
}

// clearObstacles removes a non-directory ancestor of path below root and a
// directory at path itself.
func clearObstacles(root, path string) error {
	rel, err := filepath.Rel(root, filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("clear path %q: %w", path, err)
	}
	cur := root
	if rel != "." {
		for _, part := range strings.Split(rel, string(filepath.Separator)) {
			cur = filepath.Join(cur, part)
			st, err := os.Lstat(cur)
			if errors.Is(err, os.ErrNotExist) {
				break
			}
			if err != nil {
				return fmt.Errorf("clear path %q: %w", path, err)
			}
			if !st.IsDir() {
				if err := os.Remove(cur); err != nil {
					return fmt.Errorf("clear path %q: %w", path, err)
				}
				break
			}
		}
	}
	if st, err := os.Lstat(path); err == nil && st.IsDir() {
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("clear path %q: %w", path, err)
		}
	}
	return nil
}

// checkpoint brings live/ and pending/ up to date with the log and makes
// them durable, then empties the log. First it removes the transaction
// directories deleted or committed since the last checkpoint; then, for
// each changed file, it applies the last logged operation: deletions
// first, then writes (outfile: temporary file, fsync, rename), so that a
// value replacing a directory, or the reverse, finds the way clear; no
// tree's logical state has a key that is both a value and a parent. Then
// it fsyncs every directory on the way to a changed file, once (pending/
// for removed transactions), removes leftover parked pending directories,
// and only then truncates and fsyncs the log. A crash before the
// truncation is durable leaves the log whole, and replaying it rewrites
// the same files. The caller is the committer goroutine, or Open with
// replay set (see clearObstacles).
func (s *Store) checkpoint(replay bool) error {
	liveRoot := filepath.Join(s.dir, liveDir)
	pendingRoot := filepath.Join(s.dir, pendingDir)
	rootOf := func(op walOp) string {
		if op.kind.isLive() {
			return liveRoot
		}
		return pendingRoot
	}
	paths := make([]string, 0, len(s.c.dirty))
	for p := range s.c.dirty {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	dirs := map[string]struct{}{}
	for d := range s.c.dropped {
		if _, err := os.Lstat(d); errors.Is(err, os.ErrNotExist) {
			continue // never checkpointed: nothing on disk
		}
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("checkpoint: remove transaction directory: %w", err)
		}
		dirs[pendingRoot] = struct{}{}
	}
	for _, p := range paths {
		for d := filepath.Dir(p); len(d) > len(s.dir); d = filepath.Dir(d) {
			dirs[d] = struct{}{}
		}
		if op := s.c.dirty[p]; !op.kind.hasValue() {
			if err := removeFile(rootOf(op), p, false); err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
		}
	}
	// Many files: write them all, then flush the file system once
	// (syncfs), rather than one journal commit per file.
	bulk := len(paths) > bulkSyncFiles
	opts := outfile.Options{NoDirSync: true, NoSync: bulk}
	for _, p := range paths {
		op := s.c.dirty[p]
		if !op.kind.hasValue() {
			continue
		}
		err := writeAtomic(s.dir, p, op.value, opts)
		if err != nil && replay {
			if cerr := clearObstacles(rootOf(op), p); cerr != nil {
				return fmt.Errorf("checkpoint: %w", errors.Join(err, cerr))
			}
			err = writeAtomic(s.dir, p, op.value, opts)
		}
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	if bulk {
		if err := SyncFS(s.dir); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		clear(dirs)
	}
	for d := range dirs {
		if err := syncDir(d); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	if len(s.c.parked) > 0 {
		for _, p := range s.c.parked {
			if err := p.remove(); err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
		}
		if err := syncDir(pendingRoot); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	if s.c.size > int64(headerLen) || replay || s.c.version != newLog {
		if err := s.c.reset(); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	clear(s.c.dirty)
	clear(s.c.txDirty)
	clear(s.c.dropped)
	s.c.parked = s.c.parked[:0]
	return nil
}
