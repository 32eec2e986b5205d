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

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/cli"
)

// Main runs the apiclient command line with the process's standard input.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Run(ctx, args, os.Stdin, stdout, stderr)
}

// Run runs the command line: 0 on success, 1 on failure, 2 on a usage error.
//
//	apiclient [-s/--socket-path P] [-v/--verbose] [--log-level L] SUBCOMMAND
//
// The subcommands are raw (the default: flags without a subcommand are
// raw's), get, set, apply, reboot, update and exec, as in upstream's
// apiclient. exec exits with the command's exit status.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	code := cli.Run(ctx, a.command(), args, stdout, stderr)
	if code == cli.ExitOK {
		return a.exitCode
	}
	return code
}

// app is the state of one command-line run.
type app struct {
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer // progress messages
	socket   string
	logLevel string
	verbose  bool
	// exitCode is the exit status of a successful run: exec's command's.
	exitCode int
}

// open returns a client of the --socket-path API.
func (a *app) open() *Client { return New(a.socket) }

func (a *app) command() *cobra.Command {
	var raw rawOptions
	root := &cobra.Command{
		Use:   "apiclient",
		Short: "Talk to the Petrel API: raw requests (the default subcommand), get, set, apply, reboot, update and exec",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("unknown subcommand %q (want raw, get, set, apply, reboot, update or exec)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return a.raw(cmd.Context(), raw) },
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&a.socket, "socket-path", "s", api.DefaultSocketPath, "API socket")
	pf.StringVar(&a.logLevel, "log-level", "info", "log level (accepted for compatibility)")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "print the HTTP status in raw mode")
	raw.addFlags(root.Flags())
	root.AddCommand(a.rawCmd(), a.getCmd(), a.setCmd(), a.applyCmd(), a.rebootCmd(), a.updateCmd(), a.execCmd())
	return root
}

// rawOptions are the flags of raw, which the root command shares.
type rawOptions struct {
	uri, method, request, data string
	hasData                    func() bool
}

func (o *rawOptions) addFlags(f *pflag.FlagSet) {
	f.StringVarP(&o.uri, "uri", "u", "", "URI to request, e.g. /settings")
	f.StringVarP(&o.method, "method", "m", "GET", "HTTP method")
	f.StringVarP(&o.request, "request", "X", "", "HTTP method (same as --method)")
	f.StringVarP(&o.data, "data", "d", "", "request body")
	o.hasData = func() bool { return f.Changed("data") }
}

func (a *app) rawCmd() *cobra.Command {
	var o rawOptions
	cmd := &cobra.Command{
		Use:   "raw -u URI [-m METHOD] [-d DATA]",
		Short: "Send one request and print the response body",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return a.raw(cmd.Context(), o) },
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func (a *app) raw(ctx context.Context, o rawOptions) error {
	if o.uri == "" {
		return cli.Usagef("raw needs -u/--uri")
	}
	m := strings.ToUpper(o.method)
	if o.request != "" {
		m = strings.ToUpper(o.request)
	}
	var body []byte
	if o.hasData() {
		body = []byte(o.data)
	}
	c := a.open()
	defer c.Close()
	code, resp, err := c.Raw(ctx, m, o.uri, body)
	if err != nil {
		return err
	}
	if a.verbose {
		fmt.Fprintf(a.stdout, "%d %s\n", code, http.StatusText(code))
	}
	if code < 200 || code > 299 {
		return &StatusError{Method: m, URI: o.uri, Code: code, Body: string(resp)}
	}
	if len(resp) > 0 {
		if _, err := a.stdout.Write(resp); err != nil {
			return fmt.Errorf("write response: %w", err)
		}
		if !bytes.HasSuffix(resp, []byte("\n")) {
			io.WriteString(a.stdout, "\n")
		}
	}
	return nil
}

func (a *app) rebootCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reboot",
		Short: "Reboot the host",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := a.open()
			defer c.Close()
			return c.Reboot(cmd.Context())
		},
	}
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func (a *app) getCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get [PREFIX... | URI]",
		Short: "Print settings under prefixes (default os. and settings.), merged, or the JSON at one URI",
		Args:  cobra.ArbitraryArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return a.get(cmd.Context(), args) },
	}
}

// get prints settings for prefixes (merged) or the JSON at one URI.
func (a *app) get(ctx context.Context, args []string) error {
	var prefixes, uris []string
	for _, arg := range args {
		if strings.HasPrefix(arg, "/") {
			uris = append(uris, arg)
		} else {
			prefixes = append(prefixes, arg)
		}
	}
	if len(uris) > 0 && (len(prefixes) > 0 || len(uris) > 1) {
		return cli.Usagef("get takes prefixes or one URI, not both")
	}
	c := a.open()
	defer c.Close()
	if len(uris) == 1 {
		data, err := c.Do(ctx, http.MethodGet, uris[0], nil)
		if err != nil {
			return err
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("decode response of GET %s: %w", uris[0], err)
		}
		return a.printJSON(v)
	}
	if len(prefixes) == 0 {
		prefixes = []string{"os.", "settings."}
	}
	merged := map[string]any{}
	for _, p := range prefixes {
		var part map[string]any
		uri := api.PathRoot + "?" + url.Values{api.QueryPrefix: {p}}.Encode()
		if err := c.doJSON(ctx, http.MethodGet, uri, nil, &part); err != nil {
			return err
		}
		mergeJSON(merged, part)
	}
	return a.printJSON(merged)
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

func (a *app) setCmd() *cobra.Command {
	var jsonArg string
	cmd := &cobra.Command{
		Use:   "set KEY=VALUE... | set -j JSON",
		Short: "Change settings, commit and apply them",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, pairs []string) error {
			var obj *string
			if cmd.Flags().Changed("json") {
				obj = &jsonArg
			}
			return a.set(cmd.Context(), pairs, obj)
		},
	}
	cmd.Flags().StringVarP(&jsonArg, "json", "j", "", "settings as a JSON object")
	return cmd
}

// set stages key=value pairs or a JSON object (when jsonArg is not nil),
// then commits and applies.
func (a *app) set(ctx context.Context, pairs []string, jsonArg *string) error {
	if (jsonArg != nil) == (len(pairs) > 0) {
		return cli.Usagef("set takes either KEY=VALUE arguments or -j/--json, exactly one form")
	}
	var obj map[string]any
	if jsonArg != nil {
		dec := json.NewDecoder(strings.NewReader(*jsonArg))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			return cli.Usagef("--json is not a JSON object: %w", err)
		}
		if obj == nil {
			return cli.Usagef("--json is not a JSON object: %s", *jsonArg)
		}
		if inner, ok := obj["settings"].(map[string]any); ok {
			obj = inner
		}
	}
	for _, p := range pairs {
		if !strings.Contains(p, "=") {
			return cli.Usagef("%q is not KEY=VALUE", p)
		}
	}
	c := a.open()
	defer c.Close()
	tx := randomTx("set")
	if obj != nil {
		if err := c.Set(ctx, tx, obj); err != nil {
			return err
		}
	} else if err := c.SetKeyPairs(ctx, tx, pairs); err != nil {
		return err
	}
	_, err := c.CommitAndApply(ctx, tx)
	return err
}

func (a *app) applyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "apply [URI...]",
		Short: "Apply the settings of user data from file://, http(s):// URIs or - (standard input, the default)",
		Args:  cobra.ArbitraryArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return a.apply(cmd.Context(), args) },
	}
}

// apply reads user data from files, URLs or stdin and applies the settings
// of all of them in one transaction.
func (a *app) apply(ctx context.Context, sources []string) error {
	if len(sources) == 0 {
		sources = []string{"-"}
	}
	var all []map[string]any
	for _, src := range sources {
		data, err := a.fetch(ctx, src)
		if err != nil {
			return err
		}
		settings, err := ParseUserData(src, data)
		if err != nil {
			return err
		}
		all = append(all, settings)
	}
	c := a.open()
	defer c.Close()
	tx := randomTx("apply")
	for i, s := range all {
		if err := c.Set(ctx, tx, s); err != nil {
			return fmt.Errorf("stage settings from %s: %w", sources[i], err)
		}
	}
	_, err := c.CommitAndApply(ctx, tx)
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusUnprocessableEntity {
		return nil // nothing to change
	}
	return err
}

func (a *app) fetch(ctx context.Context, src string) ([]byte, error) {
	switch {
	case src == "-":
		data, err := io.ReadAll(io.LimitReader(a.stdin, maxUserData+1))
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return data, nil
	case strings.HasPrefix(src, "http://"), strings.HasPrefix(src, "https://"):
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, cli.Usagef("bad URL %q: %w", src, err)
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
