package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/petrel-os/petrel/sources/api"
)

// Client talks to apiserver over a Unix socket. It is safe for concurrent
// use and reuses connections.
type Client struct {
	socket string
	http   *http.Client
}

// New returns a client for the socket at path.
func New(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConnsPerHost: 64,
	}
	return &Client{socket: path, http: &http.Client{Transport: tr}}
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// StatusError is a non-2xx answer; Body is the server's plain-text message.
type StatusError struct {
	Method, URI string
	Code        int
	Body        string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.URI, e.Code, strings.TrimSpace(e.Body))
}

// Raw sends one request and returns the status code and body. Every request
// carries Content-Type: application/json, as upstream. A non-2xx status is
// not an error here.
func (c *Client) Raw(ctx context.Context, method, uri string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+uri, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("build request %s %s: %w", method, uri, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s on socket %s: %w", method, uri, c.socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read response of %s %s: %w", method, uri, err)
	}
	return resp.StatusCode, data, nil
}

// Do sends a request and returns the body, or a *StatusError for non-2xx.
func (c *Client) Do(ctx context.Context, method, uri string, body []byte) ([]byte, error) {
	code, data, err := c.Raw(ctx, method, uri, body)
	if err != nil {
		return nil, err
	}
	if code < 200 || code > 299 {
		return nil, &StatusError{Method: method, URI: uri, Code: code, Body: string(data)}
	}
	return data, nil
}

func (c *Client) doJSON(ctx context.Context, method, uri string, body []byte, out any) error {
	data, err := c.Do(ctx, method, uri, body)
	if err != nil {
		return err
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response of %s %s: %w", method, uri, err)
	}
	return nil
}

func withQuery(path string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// Get returns the live settings object (without the "settings" wrapper),
// filtered by prefix ("" for all).
func (c *Client) Get(ctx context.Context, prefix string) (map[string]any, error) {
	out := map[string]any{}
	err := c.doJSON(ctx, http.MethodGet, withQuery(api.PathSettings, api.QueryPrefix, prefix), nil, &out)
	return out, err
}

// GetKeys returns the live settings for the given full key names.
func (c *Client) GetKeys(ctx context.Context, keys []string) (map[string]any, error) {
	out := map[string]any{}
	err := c.doJSON(ctx, http.MethodGet, withQuery(api.PathSettings, api.QueryKeys, strings.Join(keys, ",")), nil, &out)
	return out, err
}

// Set PATCHes a settings object (without the "settings" wrapper) into
// transaction tx ("" for the server's default).
func (c *Client) Set(ctx context.Context, tx string, settings any) error {
	body, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("encode settings: %w", err)
	}
	return c.doJSON(ctx, http.MethodPatch, withQuery(api.PathSettings, api.QueryTx, tx), body, nil)
}

// SetKeyPairs PATCHes "key=value" pairs into transaction tx.
func (c *Client) SetKeyPairs(ctx context.Context, tx string, pairs []string) error {
	body, err := json.Marshal(api.KeyPairRequest{RequestPayload: pairs})
	if err != nil {
		return fmt.Errorf("encode key pairs: %w", err)
	}
	return c.doJSON(ctx, http.MethodPatch, withQuery(api.PathSettingsKeyPair, api.QueryTx, tx), body, nil)
}

// Commit commits transaction tx and returns the committed keys.
func (c *Client) Commit(ctx context.Context, tx string) ([]string, error) {
	var keys []string
	err := c.doJSON(ctx, http.MethodPost, withQuery(api.PathTxCommit, api.QueryTx, tx), nil, &keys)
	return keys, err
}

// CommitAndApply commits transaction tx, applies the changes and returns
// the committed keys.
func (c *Client) CommitAndApply(ctx context.Context, tx string) ([]string, error) {
	var keys []string
	err := c.doJSON(ctx, http.MethodPost, withQuery(api.PathTxCommitAndApply, api.QueryTx, tx), nil, &keys)
	return keys, err
}

// Apply applies the given keys, or everything when keys is empty.
func (c *Client) Apply(ctx context.Context, keys []string) error {
	return c.doJSON(ctx, http.MethodPost, withQuery(api.PathTxApply, api.QueryKeys, strings.Join(keys, ",")), nil, nil)
}

// Reboot asks the server to reboot the host.
func (c *Client) Reboot(ctx context.Context) error {
	return c.doJSON(ctx, http.MethodPost, api.PathReboot, nil, nil)
}
