package apiserver

import (
	"net/http"

	"github.com/petrel-os/petrel/sources/api"
)

// containerStatus answers GET /host-containers/status with host-ctr's
// status documents, keyed by container ID ({} when there are none).
func (s *Server) containerStatus(*http.Request) (any, error) {
	if s.cfg.ContainerStatusDir == "" {
		return map[string]api.ContainerStatus{}, nil
	}
	st, err := api.ReadContainerStatuses(s.cfg.ContainerStatusDir)
	if err != nil {
		return nil, err // a 500; the log has the file
	}
	return st, nil
}
