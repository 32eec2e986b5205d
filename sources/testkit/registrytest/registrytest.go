// Package registrytest runs a real container registry for a test: Debian's
// docker-registry (the reference implementation, distribution 2.8) on a
// free loopback port, optionally wanting a user's password (htpasswd),
// until the test ends. Only tests import it.
package registrytest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/petrel-os/petrel/sources/testkit"
)

// Start runs a registry storing in a new temporary directory and returns
// its address (127.0.0.1:PORT). With a user, every request needs that
// user's password; without, the registry is open.
func Start(t testing.TB, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	if user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: test\n    path: %s\n", htpasswd)
	}
	config := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testkit.Tool(t, "docker-registry"), "serve", config)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("docker-registry on %s:\n%s", addr, out.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		select {
		case <-exited:
			t.Fatalf("docker-registry exited before serving %s:\n%s", addr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry does not serve %s after 30s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
