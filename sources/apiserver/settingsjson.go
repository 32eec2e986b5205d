package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/petrel-os/petrel/sources/datastore"
)

// decodeObject parses body as exactly one JSON object.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("invalid JSON body: %w", err)
	}
	if m == nil {
		return nil, errors.New("invalid JSON body: expected a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON body: trailing data after the object")
	}
	return m, nil
}

// flattenSettings turns a nested settings object into datastore keys under
// prefix: objects become key segments, scalars and lists become values,
// nulls are skipped (unset). Every problem is reported at once.
func flattenSettings(prefix []string, obj map[string]json.RawMessage) ([]datastore.KeyValue, error) {
	var out []datastore.KeyValue
	var errs []error
	var walk func(path []string, obj map[string]json.RawMessage)
	walk = func(path []string, obj map[string]json.RawMessage) {
		names := make([]string, 0, len(obj))
		for n := range obj {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			raw := bytes.TrimSpace(obj[n])
			segs := append(append([]string(nil), path...), n)
			switch {
			case len(raw) > 0 && raw[0] == '{':
				var child map[string]json.RawMessage
				if err := json.Unmarshal(raw, &child); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", n, err))
					continue
				}
				walk(segs, child)
			case bytes.Equal(raw, []byte("null")):
			default:
				key, err := datastore.KeyFromSegments(datastore.DataKey, segs)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				v, err := datastore.CanonicalValue(raw)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", key.Name(), err))
					continue
				}
				out = append(out, datastore.KeyValue{Key: key, Value: v})
			}
		}
	}
	walk(prefix, obj)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// nestValues builds the nested JSON object of kvs, dropping the first skip
// segments of each key (e.g. 1 to drop "settings").
func nestValues(kvs []datastore.KeyValue, skip int) map[string]any {
	root := map[string]any{}
	for _, kv := range kvs {
		segs := kv.Key.Segments()
		if len(segs) <= skip {
			continue
		}
		segs = segs[skip:]
		m := root
		ok := true
		for _, s := range segs[:len(segs)-1] {
			next, isMap := m[s].(map[string]any)
			if !isMap {
				if _, exists := m[s]; exists {
					ok = false
					break
				}
				next = map[string]any{}
				m[s] = next
			}
			m = next
		}
		if ok {
			m[segs[len(segs)-1]] = json.RawMessage(kv.Value)
		}
	}
	return root
}

// encodeJSON marshals v without HTML escaping, so stored strings come back
// as they were written.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
