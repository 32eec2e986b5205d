package userdata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// Provider is one source of user data.
type Provider interface {
	// Name labels the provider in logs and errors.
	Name() string
	// UserData returns the raw user data, or nil and no error when this
	// provider has none.
	UserData(ctx context.Context) ([]byte, error)
}

// FileProvider reads user data from a local file; a missing file is no
// user data.
type FileProvider struct {
	Path string
}

// Name implements Provider.
func (p FileProvider) Name() string { return "file " + p.Path }

// UserData implements Provider.
func (p FileProvider) UserData(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(p.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open user data: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read user data %q: %w", p.Path, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("read user data %q: larger than %d bytes", p.Path, MaxSize)
	}
	return data, nil
}
