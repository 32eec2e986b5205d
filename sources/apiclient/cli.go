package apiclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/petrel-os/petrel/sources/api"
)

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// Main runs the apiclient command line with the process's standard input.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Run(ctx, args, os.Stdin, stdout, stderr)
}

// Run runs the command line: 0 on success, 1 on failure, 2 on a usage error.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	err := c.run(ctx, args)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "apiclient: %v\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "apiclient: %v\n", err)
	return 1
}

type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	client         *Client
	verbose        bool
}

// withDefaultSubcommand inserts "raw" after the global flags when no
// subcommand is named, as upstream makes raw the default.
func withDefaultSubcommand(args []string) []string {
	i := 0
	for i < len(args) {
		switch a := args[i]; {
		case a == "-s" || a == "--socket-path" || a == "--log-level":
			i += 2
			continue
		case a == "-v" || a == "--verbose" || strings.HasPrefix(a, "--socket-path=") || strings.HasPrefix(a, "--log-level="):
			i++
			continue
		}
		break
	}
	if i >= len(args) || !strings.HasPrefix(args[i], "-") || args[i] == "-h" || args[i] == "--help" {
		return args
	}
	return append(append(append([]string(nil), args[:i]...), "raw"), args[i:]...)
}

func (c *cli) run(ctx context.Context, args []string) error {
	args = withDefaultSubcommand(args)
	fs := pflag.NewFlagSet("apiclient", pflag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.SetInterspersed(false)
	socket := fs.StringP("socket-path", "s", api.DefaultSocketPath, "API socket")
	fs.String("log-level", "info", "log level (accepted for compatibility)")
	fs.BoolVarP(&c.verbose, "verbose", "v", false, "print the HTTP status in raw mode")
	if err := fs.Parse(args); err != nil {
		return usageOf(err)
	}
	c.client = New(*socket)
	defer c.client.Close()
	rest := fs.Args()
	cmd := "raw"
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		cmd, rest = rest[0], rest[1:]
	}
	switch cmd {
	case "raw":
		return c.raw(ctx, rest)
	case "get":
		return c.get(ctx, rest)
	case "set":
		return c.set(ctx, rest)
	case "apply":
		return c.apply(ctx, rest)
	case "reboot":
		if len(rest) > 0 {
			return usagef("reboot takes no arguments")
		}
		return c.client.Reboot(ctx)
	}
	return usagef("unknown subcommand %q (want raw, get, set, apply or reboot)", cmd)
}

func usageOf(err error) error {
	if errors.Is(err, pflag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%w: %w", errUsage, err)
}

func (c *cli) raw(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("raw", pflag.ContinueOnError)
	fs.SetOutput(c.stderr)
	uri := fs.StringP("uri", "u", "", "URI to request, e.g. /settings")
	method := fs.StringP("method", "m", "GET", "HTTP method")
	methodX := fs.StringP("request", "X", "", "HTTP method (alias of -m)")
	data := fs.StringP("data", "d", "", "request body")
	if err := fs.Parse(args); err != nil {
		return usageOf(err)
	}
	if *uri == "" {
		return usagef("raw needs -u/--uri")
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	m := strings.ToUpper(*method)
	if *methodX != "" {
		m = strings.ToUpper(*methodX)
	}
	var body []byte
	if fs.Changed("data") {
		body = []byte(*data)
	}
	code, resp, err := c.client.Raw(ctx, m, *uri, body)
	if err != nil {
		return err
	}
	if c.verbose {
		fmt.Fprintf(c.stdout, "%d %s\n", code, http.StatusText(code))
	}
	if code < 200 || code > 299 {
		return &StatusError{Method: m, URI: *uri, Code: code, Body: string(resp)}
	}
	if len(resp) > 0 {
		c.stdout.Write(resp)
		if !bytes.HasSuffix(resp, []byte("\n")) {
			io.WriteString(c.stdout, "\n")
		}
	}
	return nil
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// get prints settings for prefixes (merged) or the JSON at one URI.
func (c *cli) get(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("get", pflag.ContinueOnError)
	fs.SetOutput(c.stderr)
	if err := fs.Parse(args); err != nil {
		return usageOf(err)
	}
	var prefixes, uris []string
	for _, a := range fs.Args() {
		if strings.HasPrefix(a, "/") {
			uris = append(uris, a)
		} else {
			prefixes = append(prefixes, a)
		}
	}
	if len(uris) > 0 && (len(prefixes) > 0 || len(uris) > 1) {
		return usagef("get takes prefixes or one URI, not both")
	}
	if len(uris) == 1 {
		data, err := c.client.Do(ctx, http.MethodGet, uris[0], nil)
		if err != nil {
			return err
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("decode response of GET %s: %w", uris[0], err)
		}
		return c.printJSON(v)
	}
	if len(prefixes) == 0 {
		prefixes = []string{"os.", "settings."}
	}
	merged := map[string]any{}
	for _, p := range prefixes {
		var part map[string]any
		uri := api.PathRoot + "?" + url.Values{api.QueryPrefix: {p}}.Encode()
		if err := c.client.doJSON(ctx, http.MethodGet, uri, nil, &part); err != nil {
			return err
		}
		mergeJSON(merged, part)
	}
	return c.printJSON(merged)
}

// mergeJSON deep-merges src into dst.
func mergeJSON(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeJSON(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func randomTx(kind string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "apiclient-" + kind + "-" + string(b)
}

// set stages key=value pairs or a JSON object, then commits and applies.
func (c *cli) set(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("set", pflag.ContinueOnError)
	fs.SetOutput(c.stderr)
	jsonArg := fs.StringP("json", "j", "", "settings as a JSON object")
	if err := fs.Parse(args); err != nil {
		return usageOf(err)
	}
	pairs := fs.Args()
	hasJSON := fs.Changed("json")
	if hasJSON == (len(pairs) > 0) {
		return usagef("set takes either KEY=VALUE arguments or -j/--json, exactly one form")
	}
	tx := randomTx("set")
	if hasJSON {
		var obj map[string]any
		dec := json.NewDecoder(strings.NewReader(*jsonArg))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil || obj == nil {
			return usagef("--json is not a JSON object: %v", err)
		}
		if inner, ok := obj["settings"].(map[string]any); ok {
			obj = inner
		}
		if err := c.client.Set(ctx, tx, obj); err != nil {
			return err
		}
	} else {
		for _, p := range pairs {
			if !strings.Contains(p, "=") {
				return usagef("%q is not KEY=VALUE", p)
			}
		}
		if err := c.client.SetKeyPairs(ctx, tx, pairs); err != nil {
			return err
		}
	}
	_, err := c.client.CommitAndApply(ctx, tx)
	return err
}

// apply reads user data from files, URLs or stdin and applies the settings
// of all of them in one transaction.
func (c *cli) apply(ctx context.Context, args []string) error {
	fs := pflag.NewFlagSet("apply", pflag.ContinueOnError)
	fs.SetOutput(c.stderr)
	if err := fs.Parse(args); err != nil {
		return usageOf(err)
	}
	sources := fs.Args()
	if len(sources) == 0 {
		sources = []string{"-"}
	}
	var all []map[string]any
	for _, src := range sources {
		data, err := c.fetch(ctx, src)
		if err != nil {
			return err
		}
		settings, err := ParseUserData(src, data)
		if err != nil {
			return err
		}
		all = append(all, settings)
	}
	tx := randomTx("apply")
	for i, s := range all {
		if err := c.client.Set(ctx, tx, s); err != nil {
			return fmt.Errorf("stage settings from %s: %w", sources[i], err)
		}
	}
	_, err := c.client.CommitAndApply(ctx, tx)
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusUnprocessableEntity {
		return nil // nothing to change
	}
	return err
}

func (c *cli) fetch(ctx context.Context, src string) ([]byte, error) {
	switch {
	case src == "-":
		data, err := io.ReadAll(io.LimitReader(c.stdin, maxUserData+1))
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return data, nil
	case strings.HasPrefix(src, "http://"), strings.HasPrefix(src, "https://"):
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, usagef("bad URL %q: %v", src, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", src, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch %s: status %d", src, resp.StatusCode)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxUserData+1))
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", src, err)
		}
		return data, nil
	}
	path := strings.TrimPrefix(src, "file://")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read user data: %w", err)
	}
	return data, nil
}
