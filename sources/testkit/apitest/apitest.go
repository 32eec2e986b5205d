// Package apitest runs a real API server for a test: a new datastore and
// a Unix socket in a temporary directory with a short path (a socket's
// path is limited to 108 bytes), served until the test ends. Only tests
// import it; the API server's own tests, inside package apiserver, keep
// their harness, which cannot import this package.
package apitest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/petrel-os/petrel/sources/apiserver"
	"github.com/petrel-os/petrel/sources/datastore"
)

// Serve runs an API server until the test ends, on the socket api.sock
// (mode 0660) of a new temporary directory, with a new datastore at
// version and the Config that config returns for the socket and the
// store; it returns the socket's path.
func Serve(t testing.TB, version string, config func(sock string, store *datastore.Store) apiserver.Config) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cur, err := datastore.Create(filepath.Join(dir, "ds"), version)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	store, err := datastore.Open(ctx, cur)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "api.sock")
	srv := apiserver.New(config(sock, store))
	ln, err := apiserver.Listen(sock, -1, 0o660)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("API server: %v", err)
		}
		store.Close()
	})
	return sock
}
