package hostctr

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/petrel-os/petrel/sources/api"
)

// statusWriter writes one container's status document; a failure to
// write is logged by the caller, never fatal.
type statusWriter struct {
	dir string
	now func() time.Time
}

// write replaces the status document of st.ID atomically.
func (w statusWriter) write(st api.ContainerStatus) error {
	if w.dir == "" {
		return nil
	}
	if w.now == nil {
		w.now = time.Now
	}
	st.Updated = w.now().UTC().Format(time.RFC3339Nano)
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode status of %s: %w", st.ID, err)
	}
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return fmt.Errorf("write status of %s: %w", st.ID, err)
	}
	tmp := filepath.Join(w.dir, "."+st.ID+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write status of %s: %w", st.ID, err)
	}
	if err := os.Rename(tmp, filepath.Join(w.dir, st.ID+".json")); err != nil {
		return fmt.Errorf("write status of %s: %w", st.ID, err)
	}
	return nil
}

// reporter keeps one container's status and writes it on every change.
type reporter struct {
	st  api.ContainerStatus
	w   statusWriter
	log *slog.Logger
}

// set records state and err (nil clears the error) and writes the
// status; a failure to write is logged.
func (r *reporter) set(state api.ContainerState, err error) {
	r.st.State, r.st.Error = state, ""
	if err != nil {
		r.st.Error = err.Error()
	}
	if werr := r.w.write(r.st); werr != nil {
		r.log.Warn("write container status", "container", r.st.ID, "error", werr)
	}
}
