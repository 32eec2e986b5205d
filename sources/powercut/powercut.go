// Package powercut is test support: it records the writes and syncs made
// to an in-memory disk and replays every state a power cut could leave,
// so that tests of on-disk formats can check that each one is usable.
// Production code does not import it.
//
// The model: writes before the last completed sync are on the disk, in
// order; of the writes after it, any subset may be (a disk reorders writes
// between flushes, but a single write of one block is atomic).
package powercut

import (
	"bytes"
	"errors"
	"fmt"
)

// Disk is an in-memory disk that records every write and sync.
type Disk struct {
	b      []byte
	base   []byte
	writes []write
	syncs  int
}

type write struct {
	off   int64
	data  []byte
	epoch int // syncs before the write
}

// New returns a disk holding a copy of b; states are replayed on top of
// that copy.
func New(b []byte) *Disk { return &Disk{b: bytes.Clone(b), base: bytes.Clone(b)} }

// Bytes returns the disk's current contents (every write applied).
func (d *Disk) Bytes() []byte { return d.b }

// Syncs returns the number of Sync calls so far.
func (d *Disk) Syncs() int { return d.syncs }

// Writes returns the number of WriteAt calls so far.
func (d *Disk) Writes() int { return len(d.writes) }

// ReadAt implements io.ReaderAt.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(d.b)) {
		return 0, errors.New("read out of range")
	}
	return copy(p, d.b[off:]), nil
}

// WriteAt implements io.WriterAt and records the write.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(d.b)) {
		return 0, errors.New("write out of range")
	}
	d.writes = append(d.writes, write{off, bytes.Clone(p), d.syncs})
	return copy(d.b[off:], p), nil
}

// Sync records a flush.
func (d *Disk) Sync() error { d.syncs++; return nil }

// State is the disk after one power cut.
type State struct {
	Name string // which writes it holds
	// Epoch is the number of syncs completed before the cut; Pending is
	// how many writes made after the last of them reached the disk.
	Epoch, Pending int
	Bytes          []byte
}

// States returns every state a power cut could leave: for each epoch
// (number of completed syncs), all earlier writes plus each subset of the
// epoch's own writes, in order of epoch.
func (d *Disk) States() []State {
	var out []State
	for e := 0; e <= d.syncs; e++ {
		var done, open []write
		for _, w := range d.writes {
			switch {
			case w.epoch < e:
				done = append(done, w)
			case w.epoch == e:
				open = append(open, w)
			}
		}
		if len(open) > 16 {
			panic(fmt.Sprintf("powercut: %d writes between two syncs; too many subsets", len(open)))
		}
		for mask := 0; mask < 1<<len(open); mask++ {
			s := State{Name: fmt.Sprintf("after %d syncs", e), Epoch: e, Bytes: bytes.Clone(d.base)}
			for _, w := range done {
				copy(s.Bytes[w.off:], w.data)
			}
			for i, w := range open {
				if mask&(1<<i) != 0 {
					copy(s.Bytes[w.off:], w.data)
					s.Name += fmt.Sprintf(" +%d bytes at %d", len(w.data), w.off)
					s.Pending++
				}
			}
			out = append(out, s)
		}
	}
	return out
}
