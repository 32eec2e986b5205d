package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// PathContainerStatus answers with the status of every host and bootstrap
// container: a JSON object from container ID to ContainerStatus.
const PathContainerStatus = "/host-containers/status"

// DefaultContainerStatusDir is where host-ctr keeps one status document per
// container (<ID>.json, on tmpfs) and apiserver reads them.
const DefaultContainerStatusDir = "/run/host-containers/status"

// ContainerState is where a host or bootstrap container stands.
type ContainerState string

// Container states.
const (
	ContainerPulling   ContainerState = "pulling"
	ContainerRunning   ContainerState = "running"
	ContainerExited    ContainerState = "exited"    // a host container's task ended; systemd restarts it
	ContainerStopped   ContainerState = "stopped"   // stopped on request (disabled, or the host shuts down)
	ContainerDisabled  ContainerState = "disabled"  // enabled = false
	ContainerOff       ContainerState = "off"       // a bootstrap container with mode off
	ContainerSucceeded ContainerState = "succeeded" // a bootstrap container exited 0
	ContainerFailed    ContainerState = "failed"    // see Error
)

// ContainerStatus is what host-ctr last reported about one container.
type ContainerStatus struct {
	// ID is the containerd container ID: the setting name of a host
	// container, boot.<name> for a bootstrap container.
	ID string `json:"id"`
	// Type is "host" or "bootstrap".
	Type         string         `json:"type"`
	Source       string         `json:"source,omitempty"`
	Superpowered bool           `json:"superpowered,omitempty"`
	Essential    bool           `json:"essential,omitempty"`
	State        ContainerState `json:"state"`
	// Error says why the container is failed or exited.
	Error string `json:"error,omitempty"`
	// Image is the digest of the image the container runs.
	Image string `json:"image,omitempty"`
	// PID is the task's process ID in the host's PID namespace.
	PID      uint32 `json:"pid,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	// Updated is when host-ctr wrote this status (RFC 3339).
	Updated string `json:"updated"`
}

// ReadContainerStatuses reads every *.json status document in dir; a
// missing dir is no containers.
func ReadContainerStatuses(dir string) (map[string]ContainerStatus, error) {
	out := map[string]ContainerStatus{}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read container status directory %q: %w", dir, err)
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read container status: %w", err)
		}
		var st ContainerStatus
		if err := json.Unmarshal(data, &st); err != nil {
			return nil, fmt.Errorf("decode container status %q: %w", filepath.Join(dir, e.Name()), err)
		}
		out[id] = st
	}
	return out, nil
}
