package datastore

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	// logReserve is the space kept written (as zeros) past what ordinary
	// records may use. Only records that delete pending data may write
	// into it, so that transactions can be deleted on a full file system
	// (a deletion record is 31 bytes plus the transaction's name).
	logReserve = 64 << 10
	// padStep: ordinary records extend the padding this much ahead, so
	// that most batches need no extra write.
	padStep = 64 << 10
)

// isNoSpace reports whether err says the file system is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// deletesOnly reports whether r only deletes pending data (values of a
// transaction, or a transaction): such records may use the log's reserve.
func (r walRecord) deletesOnly() bool {
	for _, op := range r.ops {
		if op.kind != opDeletePending && op.kind != opDropPending {
			return false
		}
	}
	return true
}

// writeBatch appends the batch to the log. When the file system is full
// it writes only the records that delete pending data, into the reserve,
// and refuses the others, returning the error (matching ErrNoSpace) to
// answer them with. Any other error is fatal: err.
func (c *committer) writeBatch(batch []*walRequest) (written, refused []*walRequest, noSpace, err error) {
	err = c.appendBatch(batch, false)
	if err == nil {
		return batch, nil, nil, nil
	}
	if !errors.Is(err, ErrNoSpace) {
		return nil, nil, nil, err
	}
	noSpace = err
	for _, r := range batch {
		if r.rec.deletesOnly() {
			written = append(written, r)
		} else {
			refused = append(refused, r)
		}
	}
	if len(written) == 0 {
		return nil, refused, noSpace, nil
	}
	if err := c.appendBatch(written, true); err != nil {
		if !errors.Is(err, ErrNoSpace) {
			return nil, nil, nil, err
		}
		return nil, batch, err, nil
	}
	return written, refused, noSpace, nil
}

// appendBatch numbers the records of reqs, writes them at the end of the
// log with one pwrite and, if one of them changes the live tree, makes
// them durable with one fdatasync. Each record carries how far the log was
// durable before the batch. The space is allocated first, keeping
// logReserve free unless useReserve is set; a file system too full for it
// is an error matching ErrNoSpace, and so is a write that fails for want
// of space, whose partly written bytes are cut off again.
func (c *committer) appendBatch(reqs []*walRequest, useReserve bool) error {
	buf := c.buf[:0]
	live := false
	seq := c.seq
	for _, r := range reqs {
		seq++
		r.rec.seq = seq
		r.rec.durable = uint64(c.synced)
		buf = appendRecord(buf, r.rec, c.version)
		live = live || r.rec.isLive()
	}
	if cap(buf) <= 1<<20 {
		c.buf = buf
	}
	if err := c.ensureSpace(len(buf), useReserve); err != nil {
		return err
	}
	if _, err := c.f.WriteAt(buf, c.size); err != nil {
		err = fmt.Errorf("append to write-ahead log: %w", pathless(err))
		if terr := c.dropTail(); terr != nil {
			return fmt.Errorf("%w; then %v", err, terr) // fatal, whatever the cause
		}
		if isNoSpace(err) {
			return fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
		return err
	}
	if live {
		if err := unix.Fdatasync(int(c.f.Fd())); err != nil {
			return fmt.Errorf("fdatasync write-ahead log: %w", err)
		}
	}
	c.size += int64(len(buf))
	c.seq = seq
	if live {
		c.synced = c.size
	}
	return nil
}

// ensureSpace makes sure that n more bytes of log, plus the reserve unless
// useReserve is set, lie within the zero padding, so that the write
// overwrites blocks that already exist and cannot fail for want of space.
func (c *committer) ensureSpace(n int, useReserve bool) error {
	end := c.size + int64(n)
	if !useReserve {
		end += logReserve
	}
	if end <= c.padded {
		return nil
	}
	if !useReserve {
		// Ahead, if there is room.
		if err := c.pad(end + padStep); err == nil || !errors.Is(err, ErrNoSpace) {
			return err
		}
	}
	return c.pad(end)
}

// pad extends the log file with zeros up to end. The zeros are written,
// not just allocated (fallocate): on ext4 a write into allocated but
// unwritten blocks must convert them when it reaches the disk, which made
// every fdatasync slower, while overwriting written blocks inside the
// file's size needs no metadata at all.
func (c *committer) pad(end int64) error {
	n, err := c.f.WriteAt(make([]byte, end-c.padded), c.padded)
	c.padded += int64(n) // zeros are padding however far they got
	switch {
	case err == nil:
		return nil
	case isNoSpace(err):
		return fmt.Errorf("%w: the write-ahead log needs %d more bytes: %w", ErrNoSpace, end-c.padded, pathless(err))
	}
	return fmt.Errorf("extend write-ahead log: %w", pathless(err))
}

// dropTail cuts the log back to its last whole record after a failed
// write, so that the next record follows it, and fsyncs that: a crash
// later must not find the torn bytes. The padding goes too; it is written
// again if there is room.
func (c *committer) dropTail() error {
	if err := c.f.Truncate(c.size); err != nil {
		return fmt.Errorf("truncate write-ahead log: %w", pathless(err))
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("fsync write-ahead log: %w", pathless(err))
	}
	c.synced = c.size
	c.padded = c.size
	c.reserve()
	return nil
}

// reserve pads the log with the reserve (and a step ahead) if there is
// room; if not, the next write tries again.
func (c *committer) reserve() {
	_ = c.ensureSpace(0, false)
}

// reset empties the log after a checkpoint: truncate it to its header and
// fsync it, so that no old record can reappear after the new ones. A log
// of an older version gets the current header, written only once the
// truncation is durable, so that no crash can leave a new header in front
// of old records. The padding is written again.
func (c *committer) reset() error {
	if err := c.f.Truncate(int64(headerLen)); err != nil {
		return fmt.Errorf("truncate write-ahead log: %w", pathless(err))
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("fsync write-ahead log: %w", pathless(err))
	}
	if c.version != newLog {
		if _, err := c.f.WriteAt([]byte(newLog.header()), 0); err != nil {
			return fmt.Errorf("write write-ahead log header: %w", pathless(err))
		}
		if err := c.f.Sync(); err != nil {
			return fmt.Errorf("fsync write-ahead log: %w", pathless(err))
		}
		c.version = newLog
	}
	c.size = int64(headerLen)
	c.synced = c.size
	c.padded = c.size
	c.reserve()
	return nil
}

// closeEmpty gives the log, empty after Close's checkpoint, the version 1
// header and no padding: every version of this package reads that, so an
// older version (after a fallback to the other boot bank) can open a store
// that this one closed cleanly. The next Open writes the version 2 header
// again at its checkpoint.
func (c *committer) closeEmpty() error {
	if c.size != int64(headerLen) {
		return nil
	}
	if err := c.f.Truncate(int64(headerLen)); err != nil {
		return fmt.Errorf("truncate write-ahead log: %w", pathless(err))
	}
	if _, err := c.f.WriteAt([]byte(logV1.header()), 0); err != nil {
		return fmt.Errorf("write write-ahead log header: %w", pathless(err))
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("fsync write-ahead log: %w", pathless(err))
	}
	c.version = logV1
	c.padded = c.size
	return nil
}

// keep makes the replayed log the log to append to, when Open could not
// checkpoint it: the bytes after its last whole record (end), torn tail
// and padding, are cut off so that new records follow it and nothing old
// can reappear after them, and the rest is made durable. The padding is
// written again if there is room.
func (c *committer) keep(end int64, last uint64) error {
	if err := c.f.Truncate(end); err != nil {
		return fmt.Errorf("truncate the tail of the write-ahead log: %w", err)
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("fsync write-ahead log: %w", err)
	}
	c.size, c.synced, c.padded, c.seq = end, end, end, last
	c.reserve()
	return nil
}

// pathless returns the error inside a *fs.PathError: errors that API
// clients may see name no path (the store's directory is in the logs).
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
