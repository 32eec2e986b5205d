package userdata

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/BurntSushi/toml"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/settings"
)

// MaxSize bounds user data as read and after decompression. The settings
// it gives must also fit one API request (see fitsRequest).
const MaxSize = 16 << 20

// ErrNoSettings: the user data has no top-level settings table.
var ErrNoSettings = errors.New("did not contain a [settings] table")

// Parse decodes user data from provider: gunzipped if it starts with the
// gzip magic bytes 1f 8b, JSON if its first non-blank character is '{',
// TOML otherwise. It returns the settings table, checked against the
// model. Errors name the provider and, for syntax errors, the line.
func Parse(provider string, data []byte) (map[string]any, error) {
	wrap := func(err error) error { return fmt.Errorf("user data from %s: %w", provider, err) }
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, wrap(fmt.Errorf("decompress gzip: %w", err))
		}
		plain, err := io.ReadAll(io.LimitReader(zr, MaxSize+1))
		if err != nil {
			return nil, wrap(fmt.Errorf("decompress gzip: %w", err))
		}
		if len(plain) > MaxSize {
			return nil, wrap(fmt.Errorf("larger than %d bytes once decompressed", MaxSize))
		}
		data = plain
	}
	var doc map[string]any
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&doc); err != nil {
			return nil, wrap(jsonError(data, err))
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, wrap(errors.New("JSON: trailing data after the object"))
		}
	} else if _, err := toml.Decode(string(data), &doc); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, wrap(fmt.Errorf("TOML line %d, column %d: %s", pe.Position.Line, pe.Position.Col, pe.Message))
		}
		return nil, wrap(fmt.Errorf("TOML: %w", err))
	}
	raw, ok := doc["settings"]
	if !ok {
		return nil, wrap(ErrNoSettings)
	}
	s, ok := raw.(map[string]any)
	if !ok {
		return nil, wrap(fmt.Errorf("settings is a %T, expected a table: %w", raw, ErrNoSettings))
	}
	if err := settings.Validate(s); err != nil {
		return nil, wrap(err)
	}
	if err := fitsRequest(s); err != nil {
		return nil, wrap(err)
	}
	return s, nil
}

// ErrTooLarge: the settings do not fit one API request.
var ErrTooLarge = errors.New("settings too large for one API request")

// fitsRequest checks that settings fit the one PATCH request Run sends:
// at most api.MaxBodyBytes of JSON and settings.MaxKeys settings, the
// API server's limits, so that user data too large for the API is refused
// here with the limit named rather than by the server.
func fitsRequest(s map[string]any) error {
	body, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode settings: %w", err)
	}
	if len(body) > api.MaxBodyBytes {
		return fmt.Errorf("%w: its settings are %d bytes as JSON, more than the API's limit of %d bytes", ErrTooLarge, len(body), api.MaxBodyBytes)
	}
	kvs, err := settings.Flatten([]string{"settings"}, s)
	if err != nil {
		return err
	}
	if len(kvs) > settings.MaxKeys {
		return fmt.Errorf("%w: it sets %d settings, more than the API's limit of %d", ErrTooLarge, len(kvs), settings.MaxKeys)
	}
	return nil
}

// jsonError adds the line and column to a JSON syntax or type error.
func jsonError(data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 {
		return fmt.Errorf("JSON: %w", err)
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line := bytes.Count(data[:off], []byte("\n")) + 1
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Errorf("JSON line %d, column %d: %w", line, col, err)
}
