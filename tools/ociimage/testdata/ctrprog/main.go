// Command ctrprog is the program of the test images of package ociimage's
// tests: it runs as a host or bootstrap container, reads its user data
// ("exit N" or "serve"), counts its runs in its persistent storage and
// writes there what it saw of its mounts and namespaces.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	dir := "/.petrel/" + os.Getenv("PETREL_CONTAINER_TYPE") + "-containers/current"
	ud, err := os.ReadFile(filepath.Join(dir, "user-data"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ctrprog:", err)
		os.Exit(10)
	}
	n, _ := strconv.Atoi(readTrim(filepath.Join(dir, "runs")))
	os.WriteFile(filepath.Join(dir, "runs"), []byte(strconv.Itoa(n+1)), 0o644)
	_, rootErr := os.Stat("/.petrel/rootfs/usr")
	_, apiErr := os.Stat("/run/api.sock")
	_, ctlErr := os.Stat("/usr/local/bin/apiclient")
	report, _ := json.Marshal(map[string]any{
		"user-data": string(ud), "host-root": rootErr == nil, "api-socket": apiErr == nil, "apiclient": ctlErr == nil,
		"pid-1": os.Getpid() == 1, "release": readTrim("/etc/petrel-release"),
	})
	os.WriteFile(filepath.Join(dir, "report.json"), report, 0o644)
	cmd := strings.Fields(string(ud))
	switch {
	case len(cmd) == 2 && cmd[0] == "exit":
		code, _ := strconv.Atoi(cmd[1])
		os.Exit(code)
	case len(cmd) == 1 && cmd[0] == "serve":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		<-ch
		os.WriteFile(filepath.Join(dir, "stopped"), []byte("SIGTERM"), 0o644)
	default:
		fmt.Fprintf(os.Stderr, "ctrprog: user data %q: want \"exit N\" or \"serve\"\n", ud)
		os.Exit(11)
	}
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}
