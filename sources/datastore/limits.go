package datastore

import (
	"errors"
	"fmt"
)

// Limits on what one caller can make the store hold or do at once. They
// bound the memory of pending data and the time a write holds the writer
// lock; the API refuses larger requests with the same numbers.
const (
	// MaxKeysPerWrite is the most keys one SetMany may write (and one API
	// request may carry).
	MaxKeysPerWrite = 10000
	// MaxKeysPerTransaction is the most keys a pending transaction may
	// hold, so that its commit is no larger than one write.
	MaxKeysPerTransaction = MaxKeysPerWrite
	// MaxPendingTransactions is the most transactions that may hold
	// pending data at once. Committing or deleting one frees its slot.
	MaxPendingTransactions = 1024
)

// What a LimitError's Limit names.
const (
	LimitKeysPerWrite       = "keys per write"
	LimitKeysPerTransaction = "keys per transaction"
	LimitPendingTxs         = "pending transactions"
	LimitRecordBytes        = "bytes per log record"
)

// ErrLimit is matched (errors.Is) by every *LimitError.
var ErrLimit = errors.New("datastore limit exceeded")

// LimitError reports a write refused because it would exceed a limit.
type LimitError struct {
	Limit string // LimitKeysPerWrite, LimitKeysPerTransaction, ...
	Max   int    // the limit
	Got   int    // what the write would have made it
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v: %d %s, at most %d", ErrLimit, e.Got, e.Limit, e.Max)
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// newKeys counts the distinct keys of kvs that t (which may be nil) does
// not hold.
func newKeys(t *indexedTree, kvs []KeyValue) int {
	seen := make(map[string]struct{}, len(kvs))
	for _, kv := range kvs {
		if _, ok := t.get(kv.Key.name); !ok {
			seen[kv.Key.name] = struct{}{}
		}
	}
	return len(seen)
}
