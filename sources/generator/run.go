package generator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/multicall"
	"github.com/petrel-os/petrel/sources/settings"
)

// API is the part of the settings API sundog uses; *apiclient.Client
// satisfies it.
type API interface {
	Do(ctx context.Context, method, uri string, body []byte) ([]byte, error)
	Set(ctx context.Context, tx string, settings any) error
}

// DefaultTimeout bounds each generator, as upstream (360 s).
const DefaultTimeout = 360 * time.Second

// ExitSkip is the exit code with which a generator declines to set its
// setting.
const ExitSkip = 2

// Config configures Run.
type Config struct {
	API         API
	Transaction string
	Timeout     time.Duration // per generator; 0 means DefaultTimeout
	Logger      *slog.Logger
	// Programs and Self (this process's executable): a generator whose
	// program is a link to Self named after one of Programs (sundog
	// generate-seed) runs in this process, unless proxy variables are
	// set for the generators, which a function call could not give it.
	// Nil or empty runs every generator as a new process.
	Programs multicall.Programs
	Self     string
}

// Result says what Run did.
type Result struct {
	Generated []string // keys given a value
	Skipped   []string // keys whose generator exited 2
	Populated []string // keys not run because a value exists
}

// ErrGenerator is matched by a failed generator's error.
var ErrGenerator = errors.New("setting generator failed")

// Run runs the generator of every setting that has no value, live or in
// the launch transaction, and PATCHes the results into the transaction.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var gens map[string]string
	if err := getJSON(ctx, cfg.API, api.PathSettingGenerators, &gens); err != nil {
		return res, fmt.Errorf("read setting generators: %w", err)
	}
	if len(gens) == 0 {
		return res, nil
	}
	live, _, populated, err := Current(ctx, cfg.API, cfg.Transaction)
	if err != nil {
		return res, err
	}
	env := proxyEnv(live)
	out := map[string]any{}
	for _, key := range sortedKeys(gens) {
		if IsPopulated(populated, key) {
			res.Populated = append(res.Populated, key)
			continue
		}
		k, err := datastore.ParseKey(datastore.DataKey, key)
		if err != nil || k.Segments()[0] != "settings" || len(k.Segments()) < 2 {
			return res, fmt.Errorf("setting generator for %q: not a settings key", key)
		}
		v, skip, err := cfg.runOne(ctx, key, gens[key], timeout, env, log)
		if err != nil {
			return res, err
		}
		if skip {
			log.Info("generator skipped its setting", "key", key)
			res.Skipped = append(res.Skipped, key)
			continue
		}
		if err := setPath(out, k.Segments()[1:], v); err != nil {
			return res, fmt.Errorf("setting generator for %q: %w", key, err)
		}
		res.Generated = append(res.Generated, key)
	}
	if len(out) == 0 {
		return res, nil
	}
	if err := settings.Validate(out); err != nil {
		return res, fmt.Errorf("generated settings: %w", err)
	}
	if err := cfg.API.Set(ctx, cfg.Transaction, out); err != nil {
		return res, fmt.Errorf("store generated settings in transaction %q: %w", cfg.Transaction, err)
	}
	return res, nil
}

// Current reads the live settings and those staged in transaction tx. It
// returns both and the name of every key ("settings.motd") with a value
// in either.
func Current(ctx context.Context, c API, tx string) (live, pending map[string]any, populated map[string]bool, err error) {
	if err := getJSON(ctx, c, api.PathSettings, &live); err != nil {
		return nil, nil, nil, fmt.Errorf("read settings: %w", err)
	}
	if err := getJSON(ctx, c, api.PathTx+"?"+url.Values{api.QueryTx: {tx}}.Encode(), &pending); err != nil {
		return nil, nil, nil, fmt.Errorf("read transaction %q: %w", tx, err)
	}
	populated = map[string]bool{}
	for _, src := range []struct {
		what string
		m    map[string]any
	}{{"live settings", live}, {fmt.Sprintf("transaction %q", tx), pending}} {
		kvs, err := settings.Flatten([]string{"settings"}, src.m)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("read %s: %w", src.what, err)
		}
		for _, kv := range kvs {
			populated[kv.Key.Name()] = true
		}
	}
	return live, pending, populated, nil
}

// IsPopulated says whether key has a value in populated (from Current),
// or any key below it has one: a user or default value always wins over
// a generator.
func IsPopulated(populated map[string]bool, key string) bool {
	if populated[key] {
		return true
	}
	for p := range populated {
		if strings.HasPrefix(p, key+".") {
			return true
		}
	}
	return false
}

// runOne runs one generator command.
func (cfg Config) runOne(ctx context.Context, key, cmdline string, timeout time.Duration, env []string, log *slog.Logger) (any, bool, error) {
	argv, err := Split(cmdline)
	if err != nil || len(argv) == 0 {
		return nil, false, fmt.Errorf("%w: %s: command %q: %v", ErrGenerator, key, cmdline, err)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if run, ok := cfg.Programs.Find(cfg.Self, argv[0]); ok && len(env) == 0 {
		if code := run(cctx, argv[1:], &stdout, &stderr); code != 0 {
			err = exitCode(code)
		}
	} else {
		cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err = cmd.Run()
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line != "" {
			log.Info("generator stderr", "key", key, "line", line)
		}
	}
	if cctx.Err() == context.DeadlineExceeded {
		return nil, false, fmt.Errorf("%w: %s: %q timed out after %s", ErrGenerator, key, cmdline, timeout)
	}
	var ee interface{ ExitCode() int }
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() == ExitSkip:
		return nil, true, nil
	case errors.As(err, &ee):
		return nil, false, fmt.Errorf("%w: %s: %q: %v: %s", ErrGenerator, key, cmdline, err, strings.TrimSpace(stderr.String()))
	default:
		return nil, false, fmt.Errorf("%w: %s: run %q: %w", ErrGenerator, key, cmdline, err)
	}
	var v any
	dec := json.NewDecoder(&stdout)
	if err := dec.Decode(&v); err != nil {
		return nil, false, fmt.Errorf("%w: %s: %q printed %q, expected a JSON value: %v", ErrGenerator, key, cmdline, stdout.String(), err)
	}
	return v, false, nil
}

func setPath(m map[string]any, segs []string, v any) error {
	for _, s := range segs[:len(segs)-1] {
		next, ok := m[s].(map[string]any)
		if !ok {
			if _, exists := m[s]; exists {
				return fmt.Errorf("%q already holds a value", s)
			}
			next = map[string]any{}
			m[s] = next
		}
		m = next
	}
	m[segs[len(segs)-1]] = v
	return nil
}

// proxyEnv sets HTTPS_PROXY and NO_PROXY from the network settings.
func proxyEnv(live map[string]any) []string {
	network, _ := live["network"].(map[string]any)
	proxy, _ := network["https-proxy"].(string)
	if proxy == "" {
		return nil
	}
	no := []string{"localhost", "127.0.0.1"}
	if list, ok := network["no-proxy"].([]any); ok {
		for _, e := range list {
			if s, ok := e.(string); ok {
				no = append(no, s)
			}
		}
	}
	if k8s, ok := live["kubernetes"].(map[string]any); ok {
		for _, f := range []string{"api-server", "cluster-domain"} {
			if s, ok := k8s[f].(string); ok {
				no = append(no, s)
			}
		}
	}
	n := strings.Join(no, ",")
	return []string{"HTTPS_PROXY=" + proxy, "https_proxy=" + proxy, "NO_PROXY=" + n, "no_proxy=" + n}
}

func getJSON(ctx context.Context, c API, uri string, out any) error {
	data, err := c.Do(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response of GET %s: %w", uri, err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// exitCode is the exit status of a generator run in process, as
// *exec.ExitError says it for one run as a process.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }
func (c exitCode) ExitCode() int { return int(c) }
