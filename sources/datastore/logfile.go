package datastore

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// appendBatch numbers the records of reqs, writes them at the end of the
// log with one pwrite and, if one of them changes the live tree, makes
// them durable with one fdatasync. Each record carries how far the log was
// durable before the batch. It returns the number of live records.
func (c *committer) appendBatch(reqs []*walRequest) (int64, error) {
	buf := c.buf[:0]
	var live int64
	seq := c.seq
	for _, r := range reqs {
		seq++
		r.rec.seq = seq
		r.rec.durable = uint64(c.synced)
		buf = appendRecord(buf, r.rec, c.version)
		if r.rec.isLive() {
			live++
		}
	}
	if cap(buf) <= 1<<20 {
		c.buf = buf
	}
	if _, err := c.f.WriteAt(buf, c.size); err != nil {
		return 0, fmt.Errorf("append to write-ahead log: %w", pathless(err))
	}
	if live > 0 {
		if err := unix.Fdatasync(int(c.f.Fd())); err != nil {
			return 0, fmt.Errorf("fdatasync write-ahead log: %w", err)
		}
	}
	c.size += int64(len(buf))
	c.seq = seq
	if live > 0 {
		c.synced = c.size
	}
	return live, nil
}

// reset empties the log after a checkpoint: truncate it to its header and
// fsync it. A log of an older version gets the current header, written
// only once the truncation is durable, so that no crash can leave a new
// header in front of old records.
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
