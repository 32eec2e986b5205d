package generator

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/apiclient"
)

// Main is the sundog agent:
//
//	sundog [--socket-path P] [--transaction T] [--timeout D]
//	sundog generate-seed     print a random update seed 0..2047 (a generator)
//
// Exit codes: 0 ok, 1 failure, 2 usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "generate-seed" {
		var b [2]byte
		if _, err := rand.Read(b[:]); err != nil {
			fmt.Fprintf(stderr, "sundog: generate seed: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, binary.BigEndian.Uint16(b[:])%2048)
		return 0
	}
	fs := flag.NewFlagSet("sundog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket-path", api.DefaultSocketPath, "API socket")
	tx := fs.String("transaction", api.LaunchTransaction, "transaction receiving generated settings")
	timeout := fs.Duration("timeout", DefaultTimeout, "time limit of each generator")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sundog: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "sundog: bad --log-level %q\n", *level)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})).With("component", "sundog")
	c := apiclient.New(*socket)
	defer c.Close()
	res, err := Run(ctx, Config{API: c, Transaction: *tx, Timeout: *timeout, Logger: log})
	if err != nil {
		log.Error("sundog failed", "error", err)
		return 1
	}
	fmt.Fprintf(stdout, "generated %d settings, %d skipped, %d already set\n", len(res.Generated), len(res.Skipped), len(res.Populated))
	return 0
}
