package datastore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The write-ahead log (.wal in the versioned directory) is the durable copy
// of every live write, and the only copy of every pending write, that is
// not yet checkpointed. Format, version 2:
//
//	file    = header record*
//	header  = "PTRLWAL2"                       (8 bytes; "PTRLWAL1": version 1)
//	record  = length:u32 crc:u32 payload       (little endian)
//	          length = len(payload) ≤ maxRecordPayload
//	          crc    = CRC-32C (Castagnoli) of payload
//	payload = seq:u64 durable:u64 tx:str16 count:u32 op*
//	          (version 1: seq:u64 tx:str16 count:u32 op*)
//	op      = kind:u8 [data:str16] [meta:str16] [value:str32]
//	          data for every kind but opDropPending,
//	          meta for opSetMeta/opDeleteMeta,
//	          value for opSetData/opSetMeta/opSetPending
//	str16   = len:u16 bytes;  str32 = len:u32 bytes
//
// data and meta are canonical key names, value is canonical JSON. tx is the
// committed transaction ("" for a direct live write), or the transaction
// that the pending operations (kinds 5-7) change, which then must be set.
// A commit record holds the live sets and an opDropPending of tx. Kinds 5-7
// were added after the first release of the format; a log holding only
// kinds 1-4 reads the same as before, and an older reader refuses the new
// kinds as corrupt rather than ignoring them. Records follow each other
// with consecutive seq numbers.
//
// durable (version 2) is the file offset up to which the log was known to
// be on stable storage (fdatasynced) when the record was written; it is
// never more than the record's own offset. It tells a torn tail from
// damage: the log ends at the first record that is short, fails its
// checksum or breaks the sequence, unless a valid record after it claims
// durability beyond that record's offset, which a crash cannot produce
// (see docs/datastore.md); that is ErrCorrupt. Version 1 logs, written by
// older versions, end at the first such record, as they always did.
type logVersion uint8

const (
	logV1 logVersion = 1
	logV2 logVersion = 2
	// newLog is the version of every log this package creates.
	newLog = logV2
)

const headerPrefix = "PTRLWAL"

// header returns the file header of a log of version v.
func (v logVersion) header() string { return headerPrefix + string('0'+rune(v)) }

// headerLen is the length of every version's header.
const headerLen = len(headerPrefix) + 1

// parseHeader returns the version of a log whose header is h.
func parseHeader(h []byte) (logVersion, bool) {
	for _, v := range []logVersion{logV1, logV2} {
		if string(h) == v.header() {
			return v, true
		}
	}
	return 0, false
}

const (
	walName          = ".wal"
	recordHeaderLen  = 8
	minRecordPayload = 8 + 2 + 4 // seq, empty tx, count
	maxRecordPayload = 64 << 20
)

// opKind says what one logged operation does to the live tree.
type opKind uint8

const (
	opSetData opKind = iota + 1
	opDeleteData
	opSetMeta
	opDeleteMeta
	// Pending operations, on the transaction named by the record.
	opSetPending
	opDeletePending
	opDropPending // delete the whole transaction; no key
)

// isLive reports whether k changes the live tree (and so must be durable
// before its writer is acknowledged).
func (k opKind) isLive() bool { return k >= opSetData && k <= opDeleteMeta }

// hasValue reports whether an operation of kind k carries a value.
func (k opKind) hasValue() bool { return k == opSetData || k == opSetMeta || k == opSetPending }

// hasMeta reports whether an operation of kind k carries a metadata key.
func (k opKind) hasMeta() bool { return k == opSetMeta || k == opDeleteMeta }

// walOp is one operation on the live tree or on a pending transaction.
type walOp struct {
	kind  opKind
	data  Key    // all kinds but opDropPending
	meta  Key    // opSetMeta, opDeleteMeta
	value []byte // opSetData, opSetMeta, opSetPending
}

// walRecord is one atomic group of operations: a commit, a direct live
// write, or a pending write (SetMany or Delete into a transaction, or
// DeleteTransaction).
type walRecord struct {
	seq     uint64
	durable uint64 // version 2: the log was durable up to this offset
	tx      string
	ops     []walOp
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors that end the log during replay. Both mean the record was never
// acknowledged: a crash tore it.
var (
	errShortRecord = errors.New("short record")
	errBadChecksum = errors.New("record checksum mismatch")
)

// appendRecord appends r encoded in version v to b.
func appendRecord(b []byte, r walRecord, v logVersion) []byte {
	start := len(b)
	b = append(b, make([]byte, recordHeaderLen)...)
	b = binary.LittleEndian.AppendUint64(b, r.seq)
	if v >= logV2 {
		b = binary.LittleEndian.AppendUint64(b, r.durable)
	}
	b = appendStr16(b, r.tx)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.ops)))
	for _, op := range r.ops {
		b = append(b, byte(op.kind))
		if op.kind != opDropPending {
			b = appendStr16(b, op.data.name)
		}
		if op.kind.hasMeta() {
			b = appendStr16(b, op.meta.name)
		}
		if op.kind.hasValue() {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(op.value)))
			b = append(b, op.value...)
		}
	}
	putRecordHeader(b[start:])
	return b
}

// putRecordHeader fills in the length and checksum of the record that
// starts b and runs to its end.
func putRecordHeader(b []byte) {
	payload := b[recordHeaderLen:]
	binary.LittleEndian.PutUint32(b, uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(payload, castagnoli))
}

func appendStr16(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// checkRecord reports whether r fits the format's field sizes. Keys and
// transaction names are far below the limits; values are not bounded by
// the key rules, so a huge commit is refused here rather than logged.
func checkRecord(r walRecord) error {
	size := 8 + 8 + 2 + len(r.tx) + 4
	for _, op := range r.ops {
		size += 1 + 2 + len(op.data.name) + 2 + len(op.meta.name) + 4 + len(op.value)
	}
	if size > maxRecordPayload {
		return &LimitError{Limit: LimitRecordBytes, Max: maxRecordPayload, Got: size}
	}
	return nil
}

// decodeRecord decodes the record of version v at the start of b and
// returns it with its encoded length. It returns errShortRecord when b
// ends inside the record, errBadChecksum when the payload does not match
// its checksum, and an error matching ErrCorrupt when a checksummed
// payload is malformed.
func decodeRecord(b []byte, v logVersion) (walRecord, int, error) {
	if len(b) < recordHeaderLen {
		return walRecord{}, 0, errShortRecord
	}
	n := binary.LittleEndian.Uint32(b)
	if n < minRecordPayload || n > maxRecordPayload {
		// A torn length field reads as garbage or, when the file grew but
		// its data never reached the disk, as zeros.
		return walRecord{}, 0, errBadChecksum
	}
	total := recordHeaderLen + int(n)
	if len(b) < total {
		return walRecord{}, 0, errShortRecord
	}
	payload := b[recordHeaderLen:total]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return walRecord{}, 0, errBadChecksum
	}
	r, err := decodePayload(payload, v)
	if err != nil {
		return walRecord{}, 0, fmt.Errorf("decode log record: %w: %w", ErrCorrupt, err)
	}
	return r, total, nil
}

// payloadReader reads the fields of one payload, remembering the first error.
type payloadReader struct {
	b   []byte
	err error
}

func (p *payloadReader) take(n int) []byte {
	if p.err != nil {
		return nil
	}
	if n > len(p.b) {
		p.err = errors.New("field runs past the end of the record")
		return nil
	}
	v := p.b[:n:n]
	p.b = p.b[n:]
	return v
}

func (p *payloadReader) u8() byte {
	if v := p.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (p *payloadReader) u16() int {
	if v := p.take(2); v != nil {
		return int(binary.LittleEndian.Uint16(v))
	}
	return 0
}

func (p *payloadReader) u32() int {
	if v := p.take(4); v != nil {
		return int(binary.LittleEndian.Uint32(v))
	}
	return 0
}

func (p *payloadReader) u64() uint64 {
	if v := p.take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (p *payloadReader) str16() string { return string(p.take(p.u16())) }

func decodePayload(b []byte, v logVersion) (walRecord, error) {
	p := &payloadReader{b: b}
	r := walRecord{seq: p.u64()}
	if v >= logV2 {
		r.durable = p.u64()
	}
	r.tx = p.str16()
	count := p.u32()
	if p.err != nil {
		return walRecord{}, p.err
	}
	if r.tx != "" {
		if err := CheckTransactionName(r.tx); err != nil {
			return walRecord{}, err
		}
	}
	// Each op takes at least 1 byte, which bounds a lying count.
	if count == 0 || count > len(p.b) {
		return walRecord{}, fmt.Errorf("bad operation count %d", count)
	}
	r.ops = make([]walOp, 0, count)
	for i := range count {
		op, err := decodeOp(p, r.tx)
		if err != nil {
			return walRecord{}, fmt.Errorf("operation %d: %w", i, err)
		}
		r.ops = append(r.ops, op)
	}
	if len(p.b) != 0 {
		return walRecord{}, fmt.Errorf("%d bytes after the last operation", len(p.b))
	}
	return r, nil
}

// decodeOp decodes one operation of a record whose transaction is tx.
func decodeOp(p *payloadReader, tx string) (walOp, error) {
	op := walOp{kind: opKind(p.u8())}
	if p.err != nil {
		return walOp{}, p.err
	}
	if op.kind < opSetData || op.kind > opDropPending {
		return walOp{}, fmt.Errorf("unknown kind %d", op.kind)
	}
	if !op.kind.isLive() && tx == "" {
		return walOp{}, fmt.Errorf("pending operation of kind %d outside a transaction", op.kind)
	}
	if op.kind == opDropPending {
		return op, nil
	}
	dataName := p.str16()
	var metaName string
	if op.kind.hasMeta() {
		metaName = p.str16()
	}
	if op.kind.hasValue() {
		op.value = p.take(p.u32())
	}
	if p.err != nil {
		return walOp{}, p.err
	}
	var err error
	if op.data, err = ParseKey(DataKey, dataName); err != nil {
		return walOp{}, err
	}
	if op.data.name != dataName {
		return walOp{}, fmt.Errorf("key %q is not canonical", dataName)
	}
	if op.kind.hasMeta() {
		if op.meta, err = ParseKey(MetaKey, metaName); err != nil {
			return walOp{}, err
		}
		if op.meta.name != metaName {
			return walOp{}, fmt.Errorf("metadata key %q is not canonical", metaName)
		}
	}
	if op.kind.hasValue() {
		canon, err := CanonicalValue(op.value)
		if err != nil {
			return walOp{}, fmt.Errorf("value of %q: %w", dataName, err)
		}
		if !bytes.Equal(canon, op.value) {
			return walOp{}, fmt.Errorf("value of %q is not canonical", dataName)
		}
	}
	return op, nil
}
