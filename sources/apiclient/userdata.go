package apiclient

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/BurntSushi/toml"
)

// ErrNoSettings: user data lacks a top-level settings table.
var ErrNoSettings = errors.New("user data did not contain a 'settings' section")

// maxUserData bounds decompressed user data.
const maxUserData = 16 << 20

// ParseUserData extracts the top-level settings table from user data in
// TOML or JSON (tried in that order), gunzipping it first if it starts with
// the gzip magic bytes. name labels errors.
func ParseUserData(name string, data []byte) (map[string]any, error) {
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("decompress %s: %w", name, err)
		}
		plain, err := io.ReadAll(io.LimitReader(zr, maxUserData+1))
		if err != nil {
			return nil, fmt.Errorf("decompress %s: %w", name, err)
		}
		if len(plain) > maxUserData {
			return nil, fmt.Errorf("decompress %s: larger than %d bytes", name, maxUserData)
		}
		data = plain
	}
	var doc map[string]any
	_, tomlErr := toml.Decode(string(data), &doc)
	if tomlErr != nil {
		doc = nil
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if jsonErr := dec.Decode(&doc); jsonErr != nil || doc == nil {
			var pe toml.ParseError
			if errors.As(tomlErr, &pe) {
				tomlErr = fmt.Errorf("line %d, column %d: %s", pe.Position.Line, pe.Position.Col, pe.Message)
			}
			return nil, fmt.Errorf("parse %s: neither TOML (%w) nor JSON (%v)", name, tomlErr, jsonErr)
		}
	}
	raw, ok := doc["settings"]
	if !ok {
		return nil, fmt.Errorf("parse %s: %w", name, ErrNoSettings)
	}
	settings, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parse %s: 'settings' is a %T, expected a table", name, raw)
	}
	return settings, nil
}
