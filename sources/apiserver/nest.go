package apiserver

import (
	"bytes"
	"encoding/json"

	"github.com/petrel-os/petrel/sources/datastore"
)

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
