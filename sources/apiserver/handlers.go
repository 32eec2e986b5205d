package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/settings"
)

const settingsSection = "settings"

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /{$}", s.handle(s.getModel))
	m.HandleFunc("GET "+api.PathSettings, s.handle(s.getSettings))
	m.HandleFunc("PATCH "+api.PathSettings, s.handle(s.patchSettings))
	m.HandleFunc("PATCH "+api.PathSettingsKeyPair, s.handle(s.patchKeyPair))
	m.HandleFunc("GET "+api.PathTx, s.handle(s.getTx))
	m.HandleFunc("DELETE "+api.PathTx, s.handle(s.deleteTx))
	m.HandleFunc("GET "+api.PathTxList, s.handle(s.listTx))
	m.HandleFunc("POST "+api.PathTxCommit, s.handle(s.commit))
	m.HandleFunc("POST "+api.PathTxApply, s.handleApply(s.apply))
	m.HandleFunc("POST "+api.PathTxCommitAndApply, s.handleApply(s.commitAndApply))
	m.HandleFunc("GET "+api.PathAffectedServices, s.handle(s.metadataFor("affected-services")))
	m.HandleFunc("GET "+api.PathTemplates, s.handle(s.metadataFor("template")))
	m.HandleFunc("GET "+api.PathSettingGenerators, s.handle(s.settingGenerators))
	m.HandleFunc("GET "+api.PathServices, s.handle(s.section("services")))
	m.HandleFunc("GET "+api.PathConfigurationFiles, s.handle(s.section("configuration-files")))
	m.HandleFunc("GET "+api.PathOS, s.handle(s.getOS))
	m.HandleFunc("POST "+api.PathReboot, s.handle(s.reboot))
	if s.exec != nil {
		m.HandleFunc("GET "+api.PathExec, s.serveExec)
	}
	m.HandleFunc("GET "+api.PathContainerStatus, s.handle(s.containerStatus))
	if s.updates != nil {
		m.HandleFunc("GET "+api.PathUpdateStatus, s.handle(s.getUpdateStatus))
		for _, cmd := range api.UpdateCommands() {
			m.HandleFunc("POST "+cmd.Path(), s.handle(s.startUpdate(cmd)))
		}
	}
}

// query returns a parameter and whether it was given; a given but empty
// value is a 400, as upstream.
func query(q url.Values, name string) (string, bool, error) {
	vals, ok := q[name]
	if !ok {
		return "", false, nil
	}
	if len(vals) == 0 || vals[0] == "" {
		return "", true, errorf(http.StatusBadRequest, "Input '%s' cannot be empty", name)
	}
	return vals[0], true, nil
}

func txParam(q url.Values) (string, error) {
	tx, ok, err := query(q, api.QueryTx)
	if err != nil {
		return "", err
	}
	if !ok {
		tx = api.DefaultTransaction
	}
	if err := datastore.CheckTransactionName(tx); err != nil {
		return "", err
	}
	return tx, nil
}

// keysParam parses the comma-separated keys parameter.
func keysParam(q url.Values) ([]datastore.Key, bool, error) {
	raw, ok, err := query(q, api.QueryKeys)
	if !ok || err != nil {
		return nil, ok, err
	}
	var keys []datastore.Key
	var errs []error
	for _, name := range strings.Split(raw, ",") {
		k, err := datastore.ParseKey(datastore.DataKey, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		keys = append(keys, k)
	}
	return keys, true, errors.Join(errs...)
}

// sectionPrefix applies upstream's check_prefix: a prefix shorter than the
// section selects the whole section, a longer one filters it, anything
// else selects nothing ("", false).
func sectionPrefix(given, section string) (string, bool) {
	want := section + "."
	switch {
	case strings.HasPrefix(want, given):
		return want, true
	case strings.HasPrefix(given, want):
		return given, true
	}
	return "", false
}

// withSection prepends "section." unless prefix already starts with section.
func withSection(prefix, section string) string {
	if strings.HasPrefix(prefix, section) {
		return prefix
	}
	return section + "." + prefix
}

// bodyReader returns the request body, cut off after MaxBodyBytes with an
// *http.MaxBytesError.
func (s *Server) bodyReader(r *http.Request) io.Reader {
	return http.MaxBytesReader(nil, r.Body, s.cfg.MaxBodyBytes)
}

func (s *Server) readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(s.bodyReader(r))
	if err != nil {
		return nil, s.bodyError(fmt.Errorf("read request body: %w", err))
	}
	return body, nil
}

func (s *Server) liveSection(r *http.Request, prefix string, skip int) (map[string]any, error) {
	kvs, err := s.cfg.Store.Values(r.Context(), prefix, datastore.Live())
	if err != nil {
		return nil, err
	}
	return nestValues(kvs, skip), nil
}

func (s *Server) getModel(r *http.Request) (any, error) {
	given, hasPrefix, err := query(r.URL.Query(), api.QueryPrefix)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, section := range []string{settingsSection, "services", "configuration-files"} {
		p := section + "."
		if hasPrefix {
			var ok bool
			if p, ok = sectionPrefix(given, section); !ok {
				continue
			}
		}
		m, err := s.liveSection(r, p, 1)
		if err != nil {
			return nil, err
		}
		if len(m) > 0 || !hasPrefix {
			out[section] = m
		}
	}
	osPrefix := "os."
	if hasPrefix {
		var ok bool
		if osPrefix, ok = sectionPrefix(given, "os"); !ok {
			return out, nil
		}
	}
	if m := s.osFields(osPrefix); len(m) > 0 {
		out["os"] = m
	}
	return out, nil
}

func (s *Server) getSettings(r *http.Request) (any, error) {
	if r.URL.RawQuery == "" {
		return s.allSettings(r)
	}
	q := r.URL.Query()
	keys, hasKeys, err := keysParam(q)
	if err != nil {
		return nil, err
	}
	if hasKeys {
		var kvs []datastore.KeyValue
		for _, k := range keys {
			if !k.HasPrefix(settingsSection + ".") {
				continue
			}
			v, err := s.cfg.Store.Get(r.Context(), k, datastore.Live())
			if errors.Is(err, datastore.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			kvs = append(kvs, datastore.KeyValue{Key: k, Value: v})
		}
		return nestValues(kvs, 1), nil
	}
	prefix, hasPrefix, err := query(q, api.QueryPrefix)
	if err != nil {
		return nil, err
	}
	if !hasPrefix {
		prefix = settingsSection + "."
	}
	return s.liveSection(r, withSection(prefix, settingsSection), 1)
}

// allSettings serves GET /settings without parameters, the most frequent
// read, from the encoded body cached for the current live version; a
// request after a change encodes it anew.
func (s *Server) allSettings(r *http.Request) (any, error) {
	version := s.cfg.Store.LiveVersion() // read before the state: see LiveVersion
	if c := s.settingsCache.Load(); c != nil && c.version == version {
		return c.body, nil
	}
	m, err := s.liveSection(r, settingsSection+".", 1)
	if err != nil {
		return nil, err
	}
	body, err := encodeJSON(m)
	if err != nil {
		return nil, fmt.Errorf("encode settings: %w", err)
	}
	s.settingsCache.Store(&encodedBody{version: version, body: body})
	return encodedJSON(body), nil
}

func (s *Server) patchSettings(r *http.Request) (any, error) {
	tx, err := txParam(r.URL.Query())
	if err != nil {
		return nil, err
	}
	doc, err := settings.DecodeJSON(s.bodyReader(r))
	if err != nil {
		return nil, s.bodyError(err)
	}
	return nil, s.stage(r, tx, doc)
}

// bodyError gives an error reading or decoding a request body its status:
// 408 for a body that did not arrive within ReadTimeout, 413 for a body
// over the size limit or with too many settings, else 400.
func (s *Server) bodyError(err error) error {
	var mbe *http.MaxBytesError
	var le *settings.LimitError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errorf(http.StatusRequestTimeout, "Request body not received within %s", s.cfg.Limits.ReadTimeout)
	case errors.As(err, &mbe):
		return errorf(http.StatusRequestEntityTooLarge, "Request body larger than %d bytes", mbe.Limit)
	case errors.As(err, &le) && le.What == settings.LimitKeys:
		return errorf(http.StatusRequestEntityTooLarge, "Request body holds too many settings: %v", err)
	case errors.As(err, &le):
		return errorf(http.StatusBadRequest, "Request body over a limit: %v", err)
	}
	return errorf(http.StatusBadRequest, "%v", err) // settings.ErrSyntax: "invalid JSON: ..."
}

// stage validates a settings patch and writes it into transaction tx.
func (s *Server) stage(r *http.Request, tx string, doc map[string]any) error {
	if err := s.cfg.Validator.Validate(doc); err != nil {
		return errorf(http.StatusBadRequest, "Unable to match your input to the data model: %v", err)
	}
	kvs, err := settings.Flatten([]string{settingsSection}, doc)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if len(kvs) == 0 {
		return nil
	}
	return s.cfg.Store.SetMany(r.Context(), kvs, datastore.Pending(tx))
}

func (s *Server) patchKeyPair(r *http.Request) (any, error) {
	tx, err := txParam(r.URL.Query())
	if err != nil {
		return nil, err
	}
	body, err := s.readBody(r)
	if err != nil {
		return nil, err
	}
	var req api.KeyPairRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	if len(req.RequestPayload) > settings.MaxKeys {
		return nil, errorf(http.StatusRequestEntityTooLarge, "Request body holds too many settings: %d key pairs over the limit of %d", len(req.RequestPayload), settings.MaxKeys)
	}
	tree := map[string]any{}
	var errs []error
	for _, pair := range req.RequestPayload {
		if err := addKeyPair(pair, tree); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errorf(http.StatusBadRequest, "%v", errors.Join(errs...))
	}
	return nil, s.stage(r, tx, tree)
}

// addKeyPair parses "key=value" into tree; "settings." is prefixed
// when the key's first segment is not "settings". The value's type is
// guessed like upstream: bool, then unsigned integer, then float, then string.
func addKeyPair(pair string, tree map[string]any) error {
	name, value, ok := strings.Cut(pair, "=")
	if !ok {
		return fmt.Errorf("invalid key pair %q: expected key=value", pair)
	}
	key, err := datastore.ParseKey(datastore.DataKey, name)
	if err != nil {
		return err
	}
	segs := key.Segments()
	if segs[0] == settingsSection {
		segs = segs[1:]
	}
	if len(segs) == 0 {
		return fmt.Errorf("invalid key pair %q: no setting named", pair)
	}
	var v any = value
	if b, err := strconv.ParseBool(value); err == nil && (value == "true" || value == "false") {
		v = b
	} else if u, err := strconv.ParseUint(value, 10, 64); err == nil {
		v = u
	} else if f, err := strconv.ParseFloat(value, 64); err == nil && !strings.ContainsAny(value, "xXnNiI") {
		v = f
	}
	g := tree
	for _, seg := range segs[:len(segs)-1] {
		next, isMap := g[seg].(map[string]any)
		if !isMap {
			if _, exists := g[seg]; exists {
				return fmt.Errorf("invalid key pair %q: %q is already set as a value", pair, seg)
			}
			next = map[string]any{}
			g[seg] = next
		}
		g = next
	}
	last := segs[len(segs)-1]
	if _, isMap := g[last].(map[string]any); isMap {
		return fmt.Errorf("invalid key pair %q: %q already holds nested settings", pair, last)
	}
	g[last] = v
	return nil
}

func (s *Server) getTx(r *http.Request) (any, error) {
	tx, err := txParam(r.URL.Query())
	if err != nil {
		return nil, err
	}
	kvs, err := s.cfg.Store.Values(r.Context(), settingsSection+".", datastore.Pending(tx))
	if err != nil {
		return nil, err
	}
	return nestValues(kvs, 1), nil
}

func keyNames(keys []datastore.Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.Name()
	}
	return out
}

func (s *Server) deleteTx(r *http.Request) (any, error) {
	tx, err := txParam(r.URL.Query())
	if err != nil {
		return nil, err
	}
	keys, err := s.cfg.Store.DeleteTransaction(r.Context(), tx)
	if err != nil {
		return nil, err
	}
	return keyNames(keys), nil
}

func (s *Server) listTx(r *http.Request) (any, error) {
	return s.cfg.Store.ListTransactions(r.Context())
}

func (s *Server) commitKeys(r *http.Request) ([]string, error) {
	tx, err := txParam(r.URL.Query())
	if err != nil {
		return nil, err
	}
	keys, err := s.cfg.Store.Commit(r.Context(), tx)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errorf(http.StatusUnprocessableEntity, "Tried to commit with no pending changes")
	}
	return keyNames(keys), nil
}

func (s *Server) commit(r *http.Request) (any, error) {
	return s.commitKeys(r)
}

func (s *Server) apply(r *http.Request) (any, error) {
	keys, _, err := keysParam(r.URL.Query())
	if err != nil {
		return nil, err
	}
	var names []string
	if keys != nil {
		names = keyNames(keys)
	}
	if err := s.runApplier(r, names); err != nil {
		return nil, fmt.Errorf("apply settings: %w", err)
	}
	return nil, nil
}

// runApplier runs the Applier for keys (nil: all) within ApplyTimeout.
func (s *Server) runApplier(r *http.Request, keys []string) error {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Limits.ApplyTimeout)
	defer cancel()
	return s.cfg.Applier.Apply(ctx, keys)
}

func (s *Server) commitAndApply(r *http.Request) (any, error) {
	names, err := s.commitKeys(r)
	if err != nil {
		return nil, err
	}
	if err := s.runApplier(r, names); err != nil {
		return nil, fmt.Errorf("apply committed settings: %w", err)
	}
	return names, nil
}

func (s *Server) metadataFor(meta string) func(r *http.Request) (any, error) {
	mk := datastore.MustKey(datastore.MetaKey, meta)
	return func(r *http.Request) (any, error) {
		keys, ok, err := keysParam(r.URL.Query())
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errorf(http.StatusBadRequest, "Missing input parameter '%s'", api.QueryKeys)
		}
		out := map[string]json.RawMessage{}
		for _, k := range keys {
			v, err := s.cfg.Store.GetMetadata(r.Context(), mk, k)
			if errors.Is(err, datastore.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out[k.Name()] = v
		}
		return out, nil
	}
}

func (s *Server) settingGenerators(r *http.Request) (any, error) {
	md, err := s.cfg.Store.ListMetadata(r.Context(), settingsSection+".", "setting-generator")
	if err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	for _, e := range md {
		out[e.Data.Name()] = e.Value
	}
	return out, nil
}

// section serves /services and /configuration-files: the named entries
// (each must exist, else 404) or those matching a prefix.
func (s *Server) section(section string) func(r *http.Request) (any, error) {
	return func(r *http.Request) (any, error) {
		q := r.URL.Query()
		names, hasNames, err := query(q, api.QueryNames)
		if err != nil {
			return nil, err
		}
		if hasNames {
			var kvs []datastore.KeyValue
			for _, name := range strings.Split(names, ",") {
				k, err := datastore.KeyFromSegments(datastore.DataKey, []string{section, name})
				if err != nil {
					return nil, err
				}
				found, err := s.cfg.Store.Values(r.Context(), k.Name()+".", datastore.Live())
				if err != nil {
					return nil, err
				}
				if len(found) == 0 {
					return nil, errorf(http.StatusNotFound, "Found no '%s' in datastore", k.Name())
				}
				kvs = append(kvs, found...)
			}
			return nestValues(kvs, 1), nil
		}
		prefix, hasPrefix, err := query(q, api.QueryPrefix)
		if err != nil {
			return nil, err
		}
		if !hasPrefix {
			prefix = section + "."
		}
		return s.liveSection(r, withSection(prefix, section), 1)
	}
}

func (s *Server) osFields(prefix string) map[string]string {
	o := s.cfg.OS
	out := map[string]string{}
	for _, f := range []struct{ name, value string }{
		{"pretty_name", o.PrettyName}, {"variant_id", o.VariantID}, {"version_id", o.VersionID},
		{"build_id", o.BuildID}, {"arch", o.Arch},
	} {
		if strings.HasPrefix("os."+f.name, prefix) {
			out[f.name] = f.value
		}
	}
	return out
}

func (s *Server) getOS(r *http.Request) (any, error) {
	prefix, hasPrefix, err := query(r.URL.Query(), api.QueryPrefix)
	if err != nil {
		return nil, err
	}
	if !hasPrefix {
		return s.cfg.OS, nil
	}
	return s.osFields(withSection(prefix, "os")), nil
}

func (s *Server) reboot(r *http.Request) (any, error) {
	if s.cfg.Rebooter == nil {
		return nil, errors.New("reboot: no rebooter configured")
	}
	if err := s.cfg.Rebooter.Reboot(r.Context()); err != nil {
		return nil, fmt.Errorf("reboot: %w", err)
	}
	return nil, nil
}
