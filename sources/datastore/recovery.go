package datastore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
}

// Recovery reports what Open replayed from the write-ahead log.
func (s *Store) Recovery() Recovery { return s.recovery }

// openLog opens the write-ahead log (creating it if needed), replays its
// records onto live/, settles the pending directories of commits that were
// in flight, and checkpoints, leaving an empty log open for appending.
func (s *Store) openLog() error {
	path := filepath.Join(s.dir, walName)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read write-ahead log: %w", err)
	}
	if len(data) < len(walHeader) && bytes.HasPrefix([]byte(walHeader), data) {
		// Missing, or torn while being created: no record can be in it.
		if err := writeAtomic(s.dir, path, []byte(walHeader), true); err != nil {
			return fmt.Errorf("create write-ahead log: %w", err)
		}
		data = []byte(walHeader)
	}
	if !bytes.HasPrefix(data, []byte(walHeader)) {
		return fmt.Errorf("open write-ahead log %q: %w: unknown header %q", path, ErrCorrupt, data[:min(len(data), len(walHeader))])
	}
	recs, discarded, err := readRecords(data[len(walHeader):])
	if err != nil {
		return fmt.Errorf("open write-ahead log %q: %w", path, err)
	}
	s.c.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open write-ahead log: %w", err)
	}
	logged := map[uint64]bool{}
	for _, r := range recs {
		s.noteDirty(r)
		logged[r.seq] = true
	}
	restored, err := s.settleCommitDirs(logged)
	if err != nil {
		return err
	}
	if err := s.checkpoint(true); err != nil {
		return fmt.Errorf("replay write-ahead log: %w", err)
	}
	s.recovery = Recovery{Records: len(recs), DiscardedBytes: discarded, RestoredTransactions: restored}
	return nil
}

// readRecords decodes records until the end of the log: the end of b, a
// torn record, or a break in the sequence. A record with a good checksum
// but malformed content is corruption, not a torn write, and is an error.
func readRecords(b []byte) ([]walRecord, int64, error) {
	var recs []walRecord
	off := 0
	for off < len(b) {
		r, n, err := decodeRecord(b[off:])
		if errors.Is(err, errShortRecord) || errors.Is(err, errBadChecksum) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("record at offset %d: %w", len(walHeader)+off, err)
		}
		if len(recs) > 0 && r.seq != recs[len(recs)-1].seq+1 {
			break
		}
		recs = append(recs, r)
		off += n
	}
	return recs, int64(len(b) - off), nil
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
