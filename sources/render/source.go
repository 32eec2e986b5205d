package render

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/settings"
)

// Source is where an Applier reads the model. APISource reads it over the
// settings API.
type Source interface {
	// AffectedServices maps each changed key to the services it affects.
	AffectedServices(ctx context.Context, keys []string) (map[string][]string, error)
	// Services returns the named services, or all when names is nil.
	Services(ctx context.Context, names []string) (map[string]settings.Service, error)
	// ConfigurationFiles returns the named files, or all when names is nil.
	ConfigurationFiles(ctx context.Context, names []string) (map[string]settings.ConfigurationFile, error)
	// Model returns the template data: {"settings": {...}, "os": {...}}.
	Model(ctx context.Context) (map[string]any, error)
}

// APISource is a Source over apiserver's Unix socket.
type APISource struct {
	Client *apiclient.Client
}

func (s APISource) get(ctx context.Context, path string, q url.Values, out any) error {
	uri := path
	if len(q) > 0 {
		uri += "?" + q.Encode()
	}
	data, err := s.Client.Do(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response of GET %s: %w", uri, err)
	}
	return nil
}

// AffectedServices implements Source.
func (s APISource) AffectedServices(ctx context.Context, keys []string) (map[string][]string, error) {
	out := map[string][]string{}
	err := s.get(ctx, api.PathAffectedServices, url.Values{api.QueryKeys: {strings.Join(keys, ",")}}, &out)
	return out, err
}

func names(n []string) url.Values {
	if n == nil {
		return nil
	}
	return url.Values{api.QueryNames: {strings.Join(n, ",")}}
}

// Services implements Source.
func (s APISource) Services(ctx context.Context, n []string) (map[string]settings.Service, error) {
	out := map[string]settings.Service{}
	err := s.get(ctx, api.PathServices, names(n), &out)
	return out, err
}

// ConfigurationFiles implements Source.
func (s APISource) ConfigurationFiles(ctx context.Context, n []string) (map[string]settings.ConfigurationFile, error) {
	out := map[string]settings.ConfigurationFile{}
	err := s.get(ctx, api.PathConfigurationFiles, names(n), &out)
	return out, err
}

// Model implements Source with one GET /.
func (s APISource) Model(ctx context.Context) (map[string]any, error) {
	out := map[string]any{}
	if err := s.get(ctx, api.PathRoot, nil, &out); err != nil {
		return nil, err
	}
	if _, ok := out["settings"]; !ok {
		out["settings"] = map[string]any{}
	}
	return out, nil
}
