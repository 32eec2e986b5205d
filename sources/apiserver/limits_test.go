package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawConn opens a connection to the server's socket that speaks HTTP by
// hand.
func rawConn(t *testing.T, h *harness) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", h.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestConnectionCap: with MaxConnections held by clients that send
// nothing, a further request waits until one of them closes.
func TestConnectionCap(t *testing.T) {
	h := startServerWith(t, 0o600, func(c *Config) {
		c.Limits = Limits{MaxConnections: 2, ReadHeaderTimeout: time.Minute, ReadTimeout: time.Minute}
	})
	first := rawConn(t, h)
	rawConn(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if code, _, err := h.client.Raw(ctx, http.MethodGet, "/os", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GET /os with every connection taken = %d, %v; want it to wait (deadline exceeded)", code, err)
	}
	first.Close()
	if code, _, err := h.client.Raw(context.Background(), http.MethodGet, "/os", nil); err != nil || code != 200 {
		t.Fatalf("GET /os after a connection closed = %d, %v; want 200", code, err)
	}
}

// TestReadTimeout: a body that stops arriving is answered with 408 once
// ReadTimeout has passed.
func TestReadTimeout(t *testing.T) {
	h := startServerWith(t, 0o600, func(c *Config) { c.Limits = Limits{ReadTimeout: 300 * time.Millisecond} })
	c := rawConn(t, h)
	io.WriteString(c, "PATCH /settings HTTP/1.1\r\nHost: api\r\nContent-Length: 100\r\n\r\n{\"motd\":")
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || string(body) != "Request body not received within 300ms" {
		t.Errorf("stalled body answered %d %q, want 408 naming the timeout", resp.StatusCode, body)
	}
}

// TestIdleTimeout: a kept-alive connection without a further request is
// closed by the server after IdleTimeout.
func TestIdleTimeout(t *testing.T) {
	h := startServerWith(t, 0o600, func(c *Config) { c.Limits = Limits{IdleTimeout: 200 * time.Millisecond} })
	c := rawConn(t, h)
	io.WriteString(c, "GET /os HTTP/1.1\r\nHost: api\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /os = %v, %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := br.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("idle connection: read %d bytes, %v; want the server to close it (EOF)", n, err)
	}
}

type failApplier struct{ err error }

func (a failApplier) Apply(context.Context, []string) error { return a.err }

// TestServerErrorHidesDetails: a 5xx answer names no file or program of
// the host; the log has the details under the request number it gives.
func TestServerErrorHidesDetails(t *testing.T) {
	var logs bytes.Buffer
	h := startServerWith(t, 0o600, func(c *Config) {
		c.Applier = failApplier{errors.New("run config applier /usr/bin/settings-applier: exit status 1: open /usr/share/templates/motd: no such file")}
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	code, body, err := h.client.Raw(context.Background(), http.MethodPost, "/tx/apply", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "Internal Server Error: the request failed; the apiserver log has the details (request 1)"
	if code != 500 || string(body) != want {
		t.Errorf("failed apply = %d %q, want 500 %q", code, body, want)
	}
	if l := logs.String(); !strings.Contains(l, "request=1") || !strings.Contains(l, "/usr/share/templates/motd: no such file") {
		t.Errorf("log %q lacks the request number and the cause", l)
	}
}
