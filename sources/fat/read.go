package fat

import (
	"fmt"
)

// readPiece bounds one read, so that a size claimed by a damaged image
// costs memory only as the bytes behind it are actually read.
const readPiece = 1 << 20

// ReadFile returns the contents of the file at path (matched as Lookup
// does). It follows the file's cluster chain, so a fragmented file reads
// whole; runs of consecutive clusters are read at once.
func (fs *FS) ReadFile(path string) ([]byte, error) {
	e, err := fs.Lookup(path)
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", path, err)
	}
	if e.IsDir() {
		return nil, fmt.Errorf("read %q: %w", path, ErrIsDir)
	}
	if e.Size == 0 {
		return []byte{}, nil
	}
	cb := fs.ClusterBytes()
	size := int64(e.Size)
	need := (size + cb - 1) / cb
	if need > int64(fs.Clusters) {
		return nil, fmt.Errorf("read %q: %w", path, &FieldError{Field: "directory entry " + e.Short,
			Problem: fmt.Sprintf("size %d needs %d clusters, the volume has %d", size, need, fs.Clusters)})
	}
	cs, err := fs.firstClusters(e.Cluster, need)
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", path, err)
	}
	data := make([]byte, 0, min(size, readPiece))
	for i := 0; i < len(cs); {
		j := i + 1
		for j < len(cs) && cs[j] == cs[j-1]+1 {
			j++
		}
		// Clusters i..j-1 are consecutive on disk.
		start := fs.clusterOffset(cs[i])
		n := min(int64(j-i)*cb, size-int64(len(data)))
		for done := int64(0); done < n; {
			piece := min(n-done, readPiece)
			data = append(data, make([]byte, piece)...)
			if _, err := fs.r.ReadAt(data[int64(len(data))-piece:], start+done); err != nil {
				return nil, fmt.Errorf("read %q: cluster %d: %w", path, cs[i]+uint32(done/cb), err)
			}
			done += piece
		}
		i = j
	}
	return data, nil
}

// firstClusters returns the first n clusters of the chain starting at
// first. The chain may go on (FindFile tolerates that too); ending early
// or reaching a free, reserved or out-of-range cluster is an error.
func (fs *FS) firstClusters(first uint32, n int64) ([]uint32, error) {
	cs := make([]uint32, 0, min(n, 4096))
	var loop loopCheck
	for c := first; ; {
		if !fs.validCluster(c) {
			return nil, &FieldError{Field: "FAT", Problem: fmt.Sprintf("chain from cluster %d reaches invalid cluster %d", first, c)}
		}
		if loop.loops(c) {
			return nil, &FieldError{Field: "FAT", Problem: fmt.Sprintf("chain from cluster %d loops back to cluster %d", first, c)}
		}
		cs = append(cs, c)
		if int64(len(cs)) == n {
			return cs, nil
		}
		next, end, err := fs.next(c)
		if err != nil {
			return nil, err
		}
		if end {
			return nil, &FieldError{Field: "FAT", Problem: fmt.Sprintf("chain from cluster %d ends after %d clusters, the file needs %d", first, len(cs), n)}
		}
		c = next
	}
}
