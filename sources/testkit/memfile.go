package testkit

import "sync"

// MemFile is an io.WriterAt in memory that grows as it is written, safe
// for the parallel writes at disjoint offsets that verity.Format makes.
type MemFile struct {
	mu sync.Mutex
	b  []byte
}

// WriteAt writes p at off, growing the file with zeros as needed.
func (m *MemFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

// Bytes returns the content.
func (m *MemFile) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b
}
