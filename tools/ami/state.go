package ami

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/petrel-os/petrel/sources/outfile"
)

// stateVersion is the version of the state file format.
const stateVersion = 1

// state is what an interrupted run leaves for the next one: the
// snapshots started, the blocks AWS acknowledged, the image registered.
// It is written atomically (a new file renamed over the old).
type state struct {
	Version int                   `json:"version"`
	Name    string                `json:"name"`
	Region  string                `json:"region"`
	Disks   map[string]*diskState `json:"disks"`
	ImageID string                `json:"image_id,omitempty"`

	path  string
	mu    sync.Mutex
	dirty bool
}

// diskState is one disk's upload.
type diskState struct {
	// Image, Size and ModTime identify the file uploaded: a rebuilt image
	// makes the snapshot stale.
	Image   string `json:"image"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	// ClientToken is given to StartSnapshot, so that a start whose answer
	// was lost returns the same snapshot when resumed.
	ClientToken string `json:"client_token"`
	Snapshot    string `json:"snapshot,omitempty"`
	Completed   bool   `json:"completed,omitempty"`
	// Blocks are the indices AWS acknowledged, sorted.
	Blocks []int32 `json:"blocks,omitempty"`

	done map[int32]bool
}

// StatePath returns the state file of AMI name under dir.
func StatePath(dir, name string) string { return filepath.Join(dir, name+".json") }

// loadState reads the state file at path; a missing one is a new state.
func loadState(path, name, region string) (*state, error) {
	s := &state{Version: stateVersion, Name: name, Region: region, Disks: map[string]*diskState{}, path: path}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("%w: state file %s: %w (remove it, or run with --clean)", ErrSpec, path, err)
	}
	if s.Version != stateVersion || s.Name != name {
		return nil, fmt.Errorf("%w: state file %s is version %d of AMI %q, want version %d of %q", ErrSpec, path, s.Version, s.Name, stateVersion, name)
	}
	if s.Region != region {
		return nil, fmt.Errorf("%w: state file %s is of region %s, not %s: publish to %s first, or run with --clean there", ErrSpec, path, s.Region, region, s.Region)
	}
	for _, d := range s.Disks {
		d.done = map[int32]bool{}
		for _, b := range d.Blocks {
			d.done[b] = true
		}
	}
	return s, nil
}

// disk returns the state of disk for the image at path, resetting it
// when the image changed since.
func (s *state) disk(name, path string) (d *diskState, stale string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrSpec, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d = s.Disks[name]
	if d != nil && (d.Image != path || d.Size != st.Size() || d.ModTime != st.ModTime().UnixNano()) {
		stale, d = d.Snapshot, nil
	}
	if d == nil {
		var tok [16]byte
		if _, err := rand.Read(tok[:]); err != nil {
			return nil, "", fmt.Errorf("make client token: %w", err)
		}
		d = &diskState{Image: path, Size: st.Size(), ModTime: st.ModTime().UnixNano(), ClientToken: hex.EncodeToString(tok[:]), done: map[int32]bool{}}
		s.Disks[name] = d
		s.dirty = true
	}
	return d, stale, nil
}

// update changes the state under its lock and marks it for saving.
func (s *state) update(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn()
	s.dirty = true
}

// block records an acknowledged block of d.
func (s *state) block(d *diskState, i int32) {
	s.update(func() { d.done[i] = true })
}

// save writes the state if it changed.
func (s *state) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return nil
	}
	for _, d := range s.Disks {
		d.Blocks = d.Blocks[:0]
		for b := range d.done {
			d.Blocks = append(d.Blocks, b)
		}
		slices.Sort(d.Blocks)
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	if err := outfile.WriteFile(s.path, append(data, '\n'), outfile.Options{}); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	s.dirty = false
	return nil
}

// saveEvery saves the state every interval until stop is closed.
func (s *state) saveEvery(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.save() // errors show at the final save
		}
	}
}

// remove deletes the state file.
func (s *state) remove() error {
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove state file: %w", err)
	}
	return nil
}
