package hostctr

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/petrel-os/petrel/sources/apiclient"
)

// HostContainer is settings.host-containers.<name>.
type HostContainer struct {
	Enabled      bool   `json:"enabled"`
	Superpowered bool   `json:"superpowered"`
	Source       string `json:"source"`
	UserData     string `json:"user-data"`
}

// BootstrapContainer is settings.bootstrap-containers.<name>.
type BootstrapContainer struct {
	Source    string `json:"source"`
	Mode      string `json:"mode"`
	Essential bool   `json:"essential"`
	UserData  string `json:"user-data"`
}

// Bootstrap container modes.
const (
	ModeOff    = "off"
	ModeOnce   = "once"
	ModeAlways = "always"
)

// Credential is one entry of settings.container-registry.credentials
// (upstream's list of tables): the credentials for one registry.
type Credential struct {
	Registry      string `json:"registry"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"` // base64 of user:password
	IdentityToken string `json:"identitytoken"`
}

// RegistryConfig is settings.container-registry.
type RegistryConfig struct {
	Credentials        []Credential `json:"credentials"`
	InsecureRegistries []string     `json:"insecure-registries"`
}

// Settings is what host-ctr reads from the API.
type Settings struct {
	HostContainers      map[string]HostContainer      `json:"host-containers"`
	BootstrapContainers map[string]BootstrapContainer `json:"bootstrap-containers"`
	ContainerRegistry   RegistryConfig                `json:"container-registry"`
}

// readSettings reads the container settings from the API.
func readSettings(ctx context.Context, c *apiclient.Client) (*Settings, error) {
	var s Settings
	for _, prefix := range []string{"settings.host-containers", "settings.bootstrap-containers", "settings.container-registry"} {
		m, err := c.Get(ctx, prefix)
		if err != nil {
			return nil, fmt.Errorf("read %s from the API: %w", prefix, err)
		}
		data, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", prefix, err)
		}
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, fmt.Errorf("decode %s: %w", prefix, err)
		}
	}
	return &s, nil
}

// decodeUserData decodes a container's base64 user data; key names the
// setting in the error.
func decodeUserData(key, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode %s: expected base64 (standard alphabet, padded): %w", key, err)
	}
	return b, nil
}

// credentials returns the user name and secret for host from the
// registry settings ("", "" when there are none).
func (r RegistryConfig) credentials(host string) (string, string, error) {
	for i, c := range r.Credentials { // the first wins when two name one registry
		if c.Registry != host {
			continue
		}
		switch {
		case c.IdentityToken != "":
			return "", c.IdentityToken, nil
		case c.Auth != "":
			b, err := base64.StdEncoding.DecodeString(c.Auth)
			if err != nil {
				return "", "", fmt.Errorf("decode settings.container-registry.credentials.%d.auth: %w", i, err)
			}
			user, pass, ok := strings.Cut(string(b), ":")
			if !ok {
				return "", "", fmt.Errorf("settings.container-registry.credentials.%d.auth: expected base64 of user:password", i)
			}
			return user, pass, nil
		default:
			return c.Username, c.Password, nil
		}
	}
	return "", "", nil
}

// insecure says whether host is pulled over plain HTTP.
func (r RegistryConfig) insecure(host string) bool {
	return slices.Contains(r.InsecureRegistries, host)
}
