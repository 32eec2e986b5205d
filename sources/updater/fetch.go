package updater

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// FetchOptions tune downloads. The zero value of a field takes its
// default.
type FetchOptions struct {
	// ConnectTimeout bounds the TCP connect and TLS handshake (10 s).
	ConnectTimeout time.Duration
	// StallTimeout ends an attempt that receives nothing for this long:
	// no response headers, or no body bytes (30 s).
	StallTimeout time.Duration
	// Timeout bounds one file, all attempts included (1 h: a 60 MiB
	// image at 20 KiB/s).
	Timeout time.Duration
	// Tries is the number of attempts per file (4). A retry resumes a
	// partial download with a Range request.
	Tries int
	// Backoff is the pause before the first retry, doubled for each
	// further one up to MaxBackoff (1 s, 30 s).
	Backoff, MaxBackoff time.Duration
	// Query is added to every request, as upstream's client adds the
	// host's seed and version.
	Query url.Values
	// Transport replaces the HTTP transport (tests); by default a
	// transport with the timeouts above, the proxy from the environment
	// and file:// URLs.
	Transport http.RoundTripper
}

func (o FetchOptions) withDefaults() FetchOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ConnectTimeout, 10*time.Second)
	def(&o.StallTimeout, 30*time.Second)
	def(&o.Timeout, time.Hour)
	def(&o.Backoff, time.Second)
	def(&o.MaxBackoff, 30*time.Second)
	if o.Tries <= 0 {
		o.Tries = 4
	}
	return o
}

// fetcher downloads files over HTTP with timeouts, retries and resume.
type fetcher struct {
	opts   FetchOptions
	client *http.Client
	logger *slog.Logger
}

func newFetcher(opts FetchOptions, logger *slog.Logger) *fetcher {
	opts = opts.withDefaults()
	tr := opts.Transport
	if tr == nil {
		t := &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   opts.ConnectTimeout,
			ResponseHeaderTimeout: opts.StallTimeout,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   2,
			ForceAttemptHTTP2:     true,
		}
		t.RegisterProtocol("file", http.NewFileTransport(http.Dir("/")))
		tr = t
	}
	return &fetcher{opts: opts, client: &http.Client{Transport: tr}, logger: logger}
}

// bytes downloads a small file (metadata) of at most limit bytes.
func (f *fetcher) bytes(ctx context.Context, rawURL, name string, limit int64) ([]byte, error) {
	var b bytes.Buffer
	if _, err := f.fetch(ctx, rawURL, name, limit, false, &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// errShort is a body that ended cleanly before the expected length; the
// next attempt resumes after it.
var errShort = errors.New("body ended early")

// fetch GETs rawURL and writes the body to w, never more than limit bytes:
// a longer body is a LengthError and the excess is not written. With exact,
// a body that ends before limit is retried from where it ended. It returns
// the number of bytes written, which is all of them only without error.
func (f *fetcher) fetch(ctx context.Context, rawURL, name string, limit int64, exact bool, w io.Writer) (int64, error) {
	u, err := f.url(rawURL)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	var n int64
	delay := f.opts.Backoff
	for try := 1; ; try++ {
		err := f.attempt(ctx, u, name, limit, exact, &n, w)
		if err == nil {
			return n, nil
		}
		if !retryable(err) || try >= f.opts.Tries || ctx.Err() != nil {
			if errors.Is(err, errShort) {
				err = &LengthError{Name: name, Want: limit, Got: n}
			}
			if try > 1 {
				err = fmt.Errorf("after %d tries: %w", try, err)
			}
			return n, err
		}
		f.logger.Warn("download failed, retrying", "url", u, "try", try, "resume_at", n, "in", delay, "err", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return n, fmt.Errorf("GET %s: %w", u, ctx.Err())
		}
		delay = min(2*delay, f.opts.MaxBackoff)
	}
}

func (f *fetcher) url(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("parse URL %q: %w", rawURL, err)
	}
	if len(f.opts.Query) > 0 {
		q := u.Query()
		for k, vs := range f.opts.Query {
			q[k] = vs
		}
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// retryable reports errors that another attempt may not meet: stalls,
// broken connections, bodies cut short and server-side statuses.
func retryable(err error) bool {
	var se *StatusError
	var nr errNoRetry
	switch {
	case errors.As(err, &nr):
		return false
	case errors.As(err, &se):
		return se.Status >= 500 || se.Status == http.StatusTooManyRequests || se.Status == http.StatusRequestTimeout
	case errors.Is(err, ErrLengthExceeded), errors.Is(err, errWrongRange), errors.Is(err, context.Canceled):
		return false
	}
	return true
}

var errWrongRange = errors.New("server resumed at the wrong offset")

// attempt makes one request, resuming at *n, and advances *n by what it
// writes to w.
func (f *fetcher) attempt(ctx context.Context, u, name string, limit int64, exact bool, n *int64, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	stall := time.AfterFunc(f.opts.StallTimeout, func() { stalled.Store(true); cancel() })
	defer stall.Stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if *n > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(*n, 10)+"-")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return f.netError(u, "response", &stalled, err)
	}
	defer resp.Body.Close()
	body := resp.Body
	switch {
	case resp.StatusCode == http.StatusOK:
		if resp.ContentLength > limit {
			return &LengthError{Name: name, Want: limit, Got: resp.ContentLength}
		}
		if *n > 0 { // the server ignored Range: skip what w already has
			if _, err := io.CopyN(io.Discard, &progress{body, stall, f.opts.StallTimeout}, *n); err != nil {
				return f.netError(u, "body", &stalled, fmt.Errorf("skip %d bytes already received: %w", *n, err))
			}
		}
	case resp.StatusCode == http.StatusPartialContent && *n > 0:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != *n {
			return fmt.Errorf("GET %s: %w: asked for byte %d, got Content-Range %q", u, errWrongRange, *n, resp.Header.Get("Content-Range"))
		}
		if resp.ContentLength >= 0 && *n+resp.ContentLength > limit {
			return &LengthError{Name: name, Want: limit, Got: *n + resp.ContentLength}
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && *n > 0:
		return f.ended(exact, *n, limit) // nothing after what w has
	default:
		return &StatusError{URL: u, Status: resp.StatusCode}
	}
	buf := make([]byte, 128<<10)
	for {
		k, err := body.Read(buf[:min(int64(len(buf)), limit-*n+1)])
		if k > 0 {
			stall.Reset(f.opts.StallTimeout)
			over := *n+int64(k) > limit
			if over {
				k = int(limit - *n) // up to the limit, never beyond
			}
			if _, werr := w.Write(buf[:k]); werr != nil {
				return fmt.Errorf("write %s: %w", name, errNoRetry{werr})
			}
			*n += int64(k)
			if over {
				return &LengthError{Name: name, Want: limit, Got: limit + 1}
			}
		}
		if err == io.EOF {
			return f.ended(exact, *n, limit)
		}
		if err != nil {
			return f.netError(u, "body", &stalled, err)
		}
	}
}

// errNoRetry wraps a failure of the destination writer: retrying the
// download would not help.
type errNoRetry struct{ error }

func (e errNoRetry) Unwrap() error { return e.error }

func (f *fetcher) ended(exact bool, n, limit int64) error {
	if exact && n < limit {
		return errShort
	}
	return nil
}

// netError turns a stall into a TimeoutError.
func (f *fetcher) netError(u, phase string, stalled *atomic.Bool, err error) error {
	var ne net.Error
	var oe *net.OpError
	switch {
	case stalled.Load():
		return &TimeoutError{URL: u, Phase: phase, After: f.opts.StallTimeout}
	case errors.As(err, &oe) && oe.Op == "dial" && oe.Timeout():
		return &TimeoutError{URL: u, Phase: "connect", After: f.opts.ConnectTimeout}
	case errors.As(err, &ne) && ne.Timeout():
		return &TimeoutError{URL: u, Phase: phase, After: f.opts.StallTimeout}
	}
	if strings.Contains(err.Error(), u) {
		return err
	}
	return fmt.Errorf("GET %s: %w", u, err)
}

// rangeStart parses the first byte of "bytes START-END/TOTAL".
func rangeStart(h string) (int64, bool) {
	s, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok = strings.Cut(s, "-")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// progress resets the stall timer whenever bytes arrive.
type progress struct {
	r     io.Reader
	stall *time.Timer
	d     time.Duration
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.stall.Reset(p.d)
	}
	return n, err
}
