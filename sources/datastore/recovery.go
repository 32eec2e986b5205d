package datastore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/petrel-os/petrel/sources/outfile"
)

// Recovery describes what Open found in the write-ahead log.
type Recovery struct {
	// Records is the number of logged records replayed onto live/.
	Records int
	// DiscardedBytes is the size of the torn tail that was ignored: a
	// record cut short or failing its checksum, never acknowledged.
	DiscardedBytes int64
	// RestoredTransactions lists transactions whose commit never reached
	// the log; their pending values were put back.
	RestoredTransactions []string
	// CheckpointErr (matching ErrNoSpace) says that the replayed records
	// could not be written into live/ and pending/ for want of space. The
	// store serves them from memory, keeps the log, and retries.
	CheckpointErr error
}

// Recovery reports what Open replayed from the write-ahead log.
func (s *Store) Recovery() Recovery { return s.recovery }

// openLog opens the write-ahead log (creating it if needed), replays its
// records onto live/, settles the pending directories of commits that were
// in flight, and checkpoints, leaving an empty log open for appending. A
// damaged log is refused before anything is written (ErrCorrupt), so that
// it stays as evidence.
//
// When the file system is too full for the checkpoint, the log stays as
// it is (its torn tail cut off) and open for appending, and openLog
// returns its records for Open to apply in memory over the files, which
// hold the state of the last checkpoint or, where the failed one got
// further, of a later record; the checkpoint is retried later.
func (s *Store) openLog() ([]walRecord, error) {
	path := filepath.Join(s.dir, walName)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read write-ahead log: %w", err)
	}
	if len(data) < headerLen && bytes.HasPrefix([]byte(newLog.header()), data) {
		// Missing, or torn while being created: no record can be in it.
		if err := writeAtomic(s.dir, path, []byte(newLog.header()), outfile.Options{}); err != nil {
			return nil, fmt.Errorf("create write-ahead log: %w", err)
		}
		data = []byte(newLog.header())
	}
	version, ok := parseHeader(data[:min(len(data), headerLen)])
	if !ok {
		return nil, fmt.Errorf("open write-ahead log %q: %w: unknown header %q", path, ErrCorrupt, data[:min(len(data), headerLen)])
	}
	recs, end, discarded, err := readRecords(data, version)
	if err != nil {
		return nil, fmt.Errorf("open write-ahead log %q: %w", path, err)
	}
	s.c.f, err = os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open write-ahead log: %w", err)
	}
	s.c.version = version
	s.c.size = int64(len(data))
	s.c.padded = s.c.size
	logged := map[uint64]bool{}
	for _, r := range recs {
		s.noteDirty(r)
		logged[r.seq] = true
	}
	restored, err := s.settleCommitDirs(logged)
	if err != nil {
		return nil, err
	}
	s.recovery = Recovery{Records: len(recs), DiscardedBytes: discarded, RestoredTransactions: restored}
	err = s.checkpoint(true)
	if err == nil {
		return nil, nil
	}
	if !isNoSpace(err) {
		return nil, fmt.Errorf("replay write-ahead log: %w", err)
	}
	var last uint64
	if len(recs) > 0 {
		last = recs[len(recs)-1].seq
	}
	if kerr := s.c.keep(end, last); kerr != nil {
		return nil, fmt.Errorf("replay write-ahead log: %w; then %w", err, kerr)
	}
	s.c.deferred = fmt.Errorf("%w: replay write-ahead log: %w", ErrNoSpace, err)
	s.c.retryAt = time.Now().Add(checkpointIdle)
	s.recovery.CheckpointErr = s.c.deferred
	return recs, nil
}

// readRecords decodes the records of the log data (header included) of
// version v until its end: the end of data, or a damaged record (short,
// failing its checksum, or breaking the sequence). In a version 2 log, a
// damaged record is the torn tail of a crash unless a valid record after
// it shows that it had been durable (see provenDurable); then, and for a
// record with a good checksum but malformed content, it returns an error
// matching ErrCorrupt that names the record's offset. It returns the
// records, the offset after the last one, and the number of bytes after
// that which are not zero padding.
func readRecords(data []byte, v logVersion) (recs []walRecord, end, discarded int64, err error) {
	off := headerLen
	for off < len(data) {
		r, n, err := decodeRecord(data[off:], v)
		damage := ""
		switch {
		case errors.Is(err, errShortRecord), errors.Is(err, errBadChecksum):
			damage = err.Error()
		case err != nil:
			return nil, 0, 0, fmt.Errorf("record at byte offset %d: %w", off, err)
		case len(recs) > 0 && r.seq != recs[len(recs)-1].seq+1:
			damage = fmt.Sprintf("sequence number %d after %d", r.seq, recs[len(recs)-1].seq)
		case r.durable > uint64(off):
			return nil, 0, 0, fmt.Errorf("record at byte offset %d: %w: it claims the log was durable up to byte %d, past its own offset", off, ErrCorrupt, r.durable)
		}
		if damage != "" {
			if v >= logV2 {
				if err := provenDurable(data, off, v, damage); err != nil {
					return nil, 0, 0, err
				}
			}
			break
		}
		recs = append(recs, r)
		off += n
	}
	nonZero := len(bytes.TrimRight(data, "\x00"))
	return recs, int64(off), int64(max(nonZero-off, 0)), nil
}

// provenDurable looks for a valid record after the damaged one at off
// that was written when the log was durable beyond off. A crash or a
// power loss can only tear what was not yet durable, so such a record
// proves that durable bytes were damaged later: it returns an error
// matching ErrCorrupt. Records can start anywhere after a damaged one, so
// every offset is tried.
func provenDurable(data []byte, off int, v logVersion, damage string) error {
	for at := off + 1; at+recordHeaderLen+minRecordPayload <= len(data); at++ {
		r, _, err := decodeRecord(data[at:], v)
		if err == nil && r.durable > uint64(off) && r.durable <= uint64(at) {
			return fmt.Errorf("%w: the record at byte offset %d is damaged (%s), but the valid record at byte offset %d (sequence number %d) was written when the log was durable up to byte %d: the damage came after the write, it is not a torn write; the log is left as it is",
				ErrCorrupt, off, damage, at, r.seq, r.durable)
		}
	}
	return nil
}

// settleCommitDirs handles pending/.commit-<seq>-<tx> directories left by
// commits in flight at the crash. If the commit's record is in the log it
// was replayed and the directory is garbage. Otherwise the commit never
// became durable, and the transaction is put back in pending/ unless a
// newer pending tree of the same name exists.
func (s *Store) settleCommitDirs(logged map[uint64]bool) ([]string, error) {
	pendingRoot := filepath.Join(s.dir, pendingDir)
	entries, err := os.ReadDir(pendingRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pending directory: %w", err)
	}
	var restored []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, commitDirPrefix) {
			continue
		}
		dir := filepath.Join(pendingRoot, name)
		// Settled here; the checkpoint after this fsyncs pending/.
		s.c.parked = append(s.c.parked, &parkedDir{path: dir, removed: true})
		seqText, encTx, ok := strings.Cut(strings.TrimPrefix(name, commitDirPrefix), "-")
		seq, perr := strconv.ParseUint(seqText, 10, 64)
		tx, derr := decodeSegment(encTx)
		if !ok || perr != nil || derr != nil || CheckTransactionName(tx) != nil || logged[seq] {
			if err := os.RemoveAll(dir); err != nil {
				return nil, fmt.Errorf("remove committed transaction directory: %w", err)
			}
			continue
		}
		target := filepath.Join(pendingRoot, encTx)
		if _, err := os.Lstat(target); err == nil {
			if err := os.RemoveAll(dir); err != nil {
				return nil, fmt.Errorf("remove superseded transaction directory: %w", err)
			}
			continue
		}
		if err := os.Rename(dir, target); err != nil {
			return nil, fmt.Errorf("restore transaction %q: %w", tx, err)
		}
		restored = append(restored, tx)
	}
	return restored, nil
}

// commitDirName is the name a committing transaction's pending directory
// is renamed to until its record is durable.
func commitDirName(seq uint64, tx string) string {
	return commitDirPrefix + strconv.FormatUint(seq, 10) + "-" + encodeSegment(tx)
}
