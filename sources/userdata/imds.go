package userdata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultIMDSURL is the EC2 instance metadata service.
const DefaultIMDSURL = "http://169.254.169.254"

// IMDSProvider reads EC2 user data (and, with Metadata, instance metadata)
// with IMDSv2: PUT /latest/api/token with
// X-aws-ec2-metadata-token-ttl-seconds, then GET /latest/user-data with
// X-aws-ec2-metadata-token. A 401 refreshes the token once per attempt; 404
// is no user data; connection errors and 5xx answers are retried with
// exponential backoff up to Attempts times. A redirect is refused
// (ErrRedirect), whatever Client's own CheckRedirect says, so the token
// goes nowhere but BaseURL.
type IMDSProvider struct {
	BaseURL  string        // default DefaultIMDSURL
	Client   *http.Client  // default: 2 s timeout per request
	TokenTTL time.Duration // default 60 s
	Attempts int           // default 8
	Backoff  time.Duration // first delay, doubled each time up to 10 s; default 250 ms
	// OnEC2 reports whether this machine is an EC2 instance; off EC2 the
	// provider has no user data and sends no request. Nil means it is.
	OnEC2 func() bool

	token       string
	tokenExpiry time.Time
}

// Name implements Provider.
func (p *IMDSProvider) Name() string { return "EC2 IMDS" }

// ErrRedirect marks an IMDS answer that redirects elsewhere. The provider
// refuses to follow it: the request carries the session token, which must
// never leave the metadata service, and the real service never redirects.
var ErrRedirect = errors.New("IMDS answered with a redirect; refused")

// refuseRedirect is the CheckRedirect of every IMDS request.
func refuseRedirect(req *http.Request, via []*http.Request) error {
	return fmt.Errorf("%w (to %s)", ErrRedirect, req.URL.Redacted())
}

// errRetry marks a failure worth retrying.
type errRetry struct{ err error }

func (e errRetry) Error() string { return e.err.Error() }
func (e errRetry) Unwrap() error { return e.err }

func (p *IMDSProvider) defaults() (string, *http.Client, time.Duration, int, time.Duration) {
	base, c, ttl, n, b := p.BaseURL, p.Client, p.TokenTTL, p.Attempts, p.Backoff
	if base == "" {
		base = DefaultIMDSURL
	}
	if c == nil {
		c = &http.Client{Timeout: 2 * time.Second}
	}
	noRedirects := *c
	noRedirects.CheckRedirect = refuseRedirect
	c = &noRedirects
	if ttl <= 0 {
		ttl = 60 * time.Second
	}
	if n <= 0 {
		n = 8
	}
	if b <= 0 {
		b = 250 * time.Millisecond
	}
	return strings.TrimSuffix(base, "/"), c, ttl, n, b
}

// UserData implements Provider.
func (p *IMDSProvider) UserData(ctx context.Context) ([]byte, error) {
	if p.OnEC2 != nil && !p.OnEC2() {
		return nil, nil
	}
	data, _, err := p.get(ctx, "/latest/user-data", "fetch user data from IMDS")
	return data, err
}

// ErrNoMetadata marks a metadata item IMDS answered 404 for.
var ErrNoMetadata = errors.New("IMDS has no such item")

// Metadata reads one instance metadata item, a path below
// /latest/meta-data/ such as "instance-id" or "placement/availability-zone",
// with the token handling and retries of UserData; surrounding white space
// is trimmed. An item IMDS does not have is ErrNoMetadata. It does not
// consult OnEC2: a caller that needs the metadata decides.
func (p *IMDSProvider) Metadata(ctx context.Context, item string) (string, error) {
	path := "/latest/meta-data/" + strings.TrimPrefix(item, "/")
	data, found, err := p.get(ctx, path, "read IMDS "+path)
	if err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("read IMDS %s: %w", path, ErrNoMetadata)
	}
	return strings.TrimSpace(string(data)), nil
}

// get reads path, retrying as the type's comment says; found is false
// for a 404 (data is then nil). what names the read in errors.
func (p *IMDSProvider) get(ctx context.Context, path, what string) (data []byte, found bool, err error) {
	_, _, _, attempts, delay := p.defaults()
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, false, fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), last)
			case <-time.After(delay):
			}
			delay = min(delay*2, 10*time.Second)
		}
		data, found, err := p.fetch(ctx, path)
		var re errRetry
		if err == nil || !errors.As(err, &re) {
			return data, found, err
		}
		last = err
	}
	return nil, false, fmt.Errorf("%s: gave up after %d attempts: %w", what, attempts, last)
}

// OnEC2 reports whether the machine whose sysfs is at sysRoot is an EC2
// instance: the DMI system or BIOS vendor of Nitro instances is
// "Amazon EC2", and the hypervisor UUID of Xen instances starts with
// "ec2".
func OnEC2(sysRoot string) bool {
	for _, f := range []string{"class/dmi/id/sys_vendor", "class/dmi/id/bios_vendor", "class/dmi/id/board_vendor"} {
		if b, err := os.ReadFile(filepath.Join(sysRoot, f)); err == nil && strings.Contains(string(b), "Amazon EC2") {
			return true
		}
	}
	b, err := os.ReadFile(filepath.Join(sysRoot, "hypervisor/uuid"))
	return err == nil && strings.HasPrefix(strings.ToLower(string(b)), "ec2")
}

// fetch makes one attempt at path, refreshing the token on 401.
func (p *IMDSProvider) fetch(ctx context.Context, path string) ([]byte, bool, error) {
	for refreshed := false; ; refreshed = true {
		tok, err := p.getToken(ctx, refreshed)
		if err != nil {
			return nil, false, err
		}
		code, body, err := p.do(ctx, http.MethodGet, path, map[string]string{"X-aws-ec2-metadata-token": tok})
		if err != nil {
			return nil, false, err
		}
		switch {
		case code == http.StatusOK:
			return body, true, nil
		case code == http.StatusNotFound:
			return nil, false, nil
		case code == http.StatusUnauthorized && !refreshed:
			continue
		case code >= 500 || code == http.StatusTooManyRequests || code == http.StatusUnauthorized:
			return nil, false, errRetry{fmt.Errorf("GET %s: status %d", path, code)}
		default:
			return nil, false, fmt.Errorf("GET %s: status %d: %s", path, code, strings.TrimSpace(string(body)))
		}
	}
}

func (p *IMDSProvider) getToken(ctx context.Context, force bool) (string, error) {
	_, _, ttl, _, _ := p.defaults()
	if !force && p.token != "" && time.Now().Before(p.tokenExpiry) {
		return p.token, nil
	}
	secs := strconv.Itoa(int(ttl / time.Second))
	code, body, err := p.do(ctx, http.MethodPut, "/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": secs})
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		err := fmt.Errorf("PUT /latest/api/token: status %d", code)
		if code >= 500 || code == http.StatusTooManyRequests {
			return "", errRetry{err}
		}
		return "", err
	}
	p.token = strings.TrimSpace(string(body))
	// Refresh a little before the service expires it.
	p.tokenExpiry = time.Now().Add(ttl * 9 / 10)
	return p.token, nil
}

func (p *IMDSProvider) do(ctx context.Context, method, path string, headers map[string]string) (int, []byte, error) {
	base, client, _, _, _ := p.defaults()
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, ErrRedirect) {
			return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		return 0, nil, errRetry{fmt.Errorf("%s %s: %w", method, path, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize+1))
	if err != nil {
		return 0, nil, errRetry{fmt.Errorf("read %s %s: %w", method, path, err)}
	}
	if len(body) > MaxSize {
		return 0, nil, fmt.Errorf("%s %s: answer larger than %d bytes", method, path, MaxSize)
	}
	return resp.StatusCode, body, nil
}
