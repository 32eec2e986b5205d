package datastore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	rec walRecord
	// removeDir is a committed transaction's renamed pending directory,
	// removed once the record is durable.
	removeDir string
	done      chan error
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

	f          *os.File // the log, opened O_APPEND
	size       int64    // bytes in the log, header included
	buf        []byte
	dirtyFiles map[string]struct{} // live files written since the last checkpoint
	dirtyDirs  map[string]struct{} // directories whose entries changed since then
	closeErr   error               // checkpoint error at Close
}

func newCommitter() *committer {
	return &committer{
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		dirtyFiles: map[string]struct{}{},
		dirtyDirs:  map[string]struct{}{},
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
// The caller holds s.wmu, so records enter the queue in seq order.
func (s *Store) enqueue(rec walRecord, removeDir string) *walRequest {
	s.seq++
	rec.seq = s.seq
	req := &walRequest{rec: rec, removeDir: removeDir, done: make(chan error, 1)}
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
				s.c.closeErr = s.checkpoint()
			}
			return
		}
	}
}

func (s *Store) checkpointOrFail() {
	if s.c.failure() != nil {
		return
	}
	if err := s.checkpoint(); err != nil {
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
// writers. Then it applies them to the live files, without fsync: until
// the next checkpoint the log is the durable copy. The files are not read
// while the store is open; the next batch, a checkpoint and Close all run
// after this on the same goroutine.
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
	s.mu.Lock()
	for _, r := range batch {
		s.applyMemory(r.rec)
	}
	s.mu.Unlock()
	// Durable and visible: the writers may go. A writer that failed to
	// apply below was still committed (Open applies the record).
	for _, r := range batch {
		r.done <- nil
	}
	for _, r := range batch {
		if s.c.failure() == nil {
			if err := s.applyFiles(r.rec, false); err != nil {
				// Open will apply the record; stop writing and never
				// checkpoint (truncate) the log from now on.
				s.c.fail(err)
			}
		}
		if r.removeDir != "" {
			// Failure is harmless: Open removes it (its record is logged).
			if os.RemoveAll(r.removeDir) == nil {
				s.c.dirtyDirs[filepath.Dir(r.removeDir)] = struct{}{}
			}
		}
	}
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

// applyFiles applies rec to the files of the live tree: each value by temp
// file and rename, without fsync. During replay, a file or directory in
// the way of a write can only have been created by a later record of the
// log, which replay rewrites afterwards, so it is removed.
func (s *Store) applyFiles(rec walRecord, replay bool) error {
	root := filepath.Join(s.dir, liveDir)
	for _, op := range rec.ops {
		path := dataPath(root, op.data)
		if op.kind == opSetMeta || op.kind == opDeleteMeta {
			path = metaPath(root, op.meta, op.data)
		}
		s.markDirty(path)
		if op.kind == opDeleteData || op.kind == opDeleteMeta {
			if err := removeFile(root, path, false); err != nil {
				return fmt.Errorf("apply log record %d: %w", rec.seq, err)
			}
			continue
		}
		err := writeAtomic(s.dir, path, op.value, false)
		if err != nil && replay {
			if cerr := clearObstacles(root, path); cerr != nil {
				return fmt.Errorf("apply log record %d: %w", rec.seq, errors.Join(err, cerr))
			}
			err = writeAtomic(s.dir, path, op.value, false)
		}
		if err != nil {
			return fmt.Errorf("apply log record %d: %w", rec.seq, err)
		}
	}
	return nil
}

// markDirty remembers that path and the entries of its ancestor
// directories (up to the versioned directory) need an fsync at the next
// checkpoint.
func (s *Store) markDirty(path string) {
	s.c.dirtyFiles[path] = struct{}{}
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		s.c.dirtyDirs[d] = struct{}{}
		if d == s.dir || len(d) <= len(s.dir) {
			return
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

// checkpoint makes every live change since the last checkpoint durable
// (fsync of each written file, then of each changed directory) and then
// empties the log. The caller is the committer goroutine, or Open.
func (s *Store) checkpoint() error {
	for path := range s.c.dirtyFiles {
		if err := syncFile(path); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	for dir := range s.c.dirtyDirs {
		if err := syncDir(dir); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
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
	clear(s.c.dirtyFiles)
	clear(s.c.dirtyDirs)
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
