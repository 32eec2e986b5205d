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

	"golang.org/x/sys/unix"
)

const (
	// checkpointBytes: the committer checkpoints once the log holds this
	// much, which bounds both the log and the replay work at Open.
	checkpointBytes = 256 << 10
	// checkpointIdle: a log that stops growing is checkpointed after this.
	checkpointIdle = 2 * time.Second
	// commitDirPrefix names a committed transaction's pending directory
	// between its commit and the removal of the directory:
	// pending/.commit-<seq>-<encoded tx>.
	commitDirPrefix = ".commit-"
)

// walRequest is one record waiting for the committer.
type walRequest struct {
	rec    walRecord
	parked *parkedDir // nil unless the record is a commit
	done   chan error
}

// parkedDir is a committed transaction's pending directory, renamed away
// until its record is durable. The committing writer removes it then; the
// next checkpoint makes sure it is gone before truncating the log (so Open
// never mistakes it for a commit that never happened). mu keeps the two
// from removing it at the same time.
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
	qmu   sync.Mutex
	queue []*walRequest

	wake chan struct{} // capacity 1: "the queue is not empty"
	stop chan struct{} // closed by Close
	done chan struct{} // closed by the goroutine when it returns

	failed atomic.Pointer[error] // first failure; the store refuses writes after it

	batches, records atomic.Int64 // fdatasyncs and records logged, for benchmarks

	f    *os.File // the log, opened O_APPEND
	size int64    // bytes in the log, header included
	buf  []byte
	// dirty holds, for each live file changed since the last checkpoint,
	// the last logged operation on it: the checkpoint writes only that.
	dirty map[string]walOp
	// parked lists the parked pending directories of commits logged
	// since the last checkpoint.
	parked   []*parkedDir
	closeErr error // checkpoint error at Close
}

func newCommitter() *committer {
	return &committer{
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		dirty: map[string]walOp{},
	}
}

// failure returns the error that broke the store, or nil.
func (c *committer) failure() error {
	if p := c.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *committer) fail(err error) {
	err = fmt.Errorf("%w: %w", ErrFailed, err)
	c.failed.CompareAndSwap(nil, &err)
}

// enqueue hands rec to the committer and returns the request to wait on.
// The caller holds wmu, so records enter the queue in seq order.
func (s *Store) enqueue(rec walRecord, parked *parkedDir) *walRequest {
	s.seq++
	rec.seq = s.seq
	req := &walRequest{rec: rec, parked: parked, done: make(chan error, 1)}
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
	idle.Stop()
	defer idle.Stop()
	for {
		select {
		case <-s.c.wake:
			s.commitQueued()
			if s.c.size >= checkpointBytes {
				s.checkpointOrFail()
			} else if s.c.size > int64(len(walHeader)) {
				idle.Reset(checkpointIdle)
			}
		case <-idle.C:
			s.checkpointOrFail()
		case <-s.c.stop:
			// Close stopped new writers first, so this drains the rest.
			s.commitQueued()
			if s.c.failure() == nil {
				s.c.closeErr = s.checkpoint(false)
			}
			return
		}
	}
}

func (s *Store) checkpointOrFail() {
	if s.c.failure() != nil {
		return
	}
	if err := s.checkpoint(false); err != nil {
		s.c.fail(err)
	}
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
// durable with one fdatasync, applies them to memory in log order (so
// readers see them, all keys of a record at once) and releases their
// writers. The live files are written at the next checkpoint: until then
// the log is the durable copy, and memory serves every read.
func (s *Store) commitBatch(batch []*walRequest) {
	if err := s.c.failure(); err != nil {
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	buf := s.c.buf[:0]
	for _, r := range batch {
		buf = appendRecord(buf, r.rec)
	}
	if cap(buf) <= 1<<20 {
		s.c.buf = buf
	}
	_, err := s.c.f.Write(buf)
	if err == nil {
		err = unix.Fdatasync(int(s.c.f.Fd()))
	}
	if err != nil {
		// The records may or may not be on disk; none was acknowledged.
		// Open replays whatever is whole.
		s.c.fail(fmt.Errorf("append to write-ahead log: %w", err))
		ferr := s.c.failure()
		for _, r := range batch {
			r.done <- ferr
		}
		return
	}
	s.c.size += int64(len(buf))
	s.c.batches.Add(1)
	s.c.records.Add(int64(len(batch)))
	s.mu.Lock()
	for _, r := range batch {
		s.applyMemory(r.rec)
	}
	s.mu.Unlock()
	for _, r := range batch {
		s.noteDirty(r.rec)
		if r.parked != nil {
			s.c.parked = append(s.c.parked, r.parked)
		}
		r.done <- nil
	}
}

// noteDirty records rec's operations as the latest for their files.
func (s *Store) noteDirty(rec walRecord) {
	root := filepath.Join(s.dir, liveDir)
	for _, op := range rec.ops {
		s.c.dirty[opPath(root, op)] = op
	}
}

func opPath(root string, op walOp) string {
	if op.kind == opSetMeta || op.kind == opDeleteMeta {
		return metaPath(root, op.meta, op.data)
	}
	return dataPath(root, op.data)
}

// applyMemory applies rec to the visible state. The caller holds s.mu.
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

// checkpoint brings live/ up to date with the log and makes it durable,
// then empties the log. For each changed file it applies the last logged
// operation: deletions first, then writes (temp file and rename), so that
// a value replacing a directory, or the reverse, finds the way clear; the
// logical state has no key that is both a value and a parent. Then it
// fsyncs every written file and every directory on the way to a changed
// file, removes leftover parked pending directories and fsyncs pending/,
// and only then truncates and fsyncs the log. A crash before the
// truncation is durable leaves the log whole, and replaying it rewrites
// the same files. The caller is the committer goroutine, or Open with
// replay set (see clearObstacles).
func (s *Store) checkpoint(replay bool) error {
	root := filepath.Join(s.dir, liveDir)
	paths := make([]string, 0, len(s.c.dirty))
	for p := range s.c.dirty {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	dirs := map[string]struct{}{}
	for _, p := range paths {
		for d := filepath.Dir(p); len(d) > len(s.dir); d = filepath.Dir(d) {
			dirs[d] = struct{}{}
		}
		if op := s.c.dirty[p]; op.kind == opDeleteData || op.kind == opDeleteMeta {
			if err := removeFile(root, p, false); err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
		}
	}
	for _, p := range paths {
		op := s.c.dirty[p]
		if op.kind != opSetData && op.kind != opSetMeta {
			continue
		}
		err := writeAtomic(s.dir, p, op.value, false)
		if err != nil && replay {
			if cerr := clearObstacles(root, p); cerr != nil {
				return fmt.Errorf("checkpoint: %w", errors.Join(err, cerr))
			}
			err = writeAtomic(s.dir, p, op.value, false)
		}
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	for _, p := range paths {
		if err := syncFile(p); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
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
		if err := syncDir(filepath.Join(s.dir, pendingDir)); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	if err := s.c.f.Truncate(int64(len(walHeader))); err != nil {
		return fmt.Errorf("checkpoint: truncate write-ahead log: %w", err)
	}
	if err := s.c.f.Sync(); err != nil {
		return fmt.Errorf("checkpoint: fsync write-ahead log: %w", err)
	}
	s.c.size = int64(len(walHeader))
	clear(s.c.dirty)
	s.c.parked = s.c.parked[:0]
	return nil
}

// syncFile fsyncs a regular file; a missing path (the key was deleted) or
// a directory is skipped.
func syncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %q: %w", path, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %q: %w", path, err)
	}
	return nil
}
