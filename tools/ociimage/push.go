package ociimage

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Credentials for a registry; empty means anonymous.
type Credentials struct{ Username, Password string }

// Push uploads the image of the layout to ref (registry/repository:tag)
// with cred. Registries on loopback are reached over plain HTTP; insecure
// allows plain HTTP for any. It returns the manifest digest.
func Push(ctx context.Context, l *Layout, ref string, insecure bool, cred Credentials) (string, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return "", fmt.Errorf("push to %q: not an image reference: %w", ref, err)
	}
	idx, err := layout.ImageIndexFromPath(l.Dir)
	if err != nil {
		return "", fmt.Errorf("read OCI layout %s: %w", l.Dir, err)
	}
	h, err := v1Hash(l.Manifest.Digest.String())
	if err != nil {
		return "", err
	}
	img, err := idx.Image(h)
	if err != nil {
		return "", fmt.Errorf("read image %s from %s: %w", h, l.Dir, err)
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuth(auth(cred))); err != nil {
		return "", fmt.Errorf("push %s: %w", r, err)
	}
	return h.String(), nil
}

func auth(c Credentials) authn.Authenticator {
	if c.Username == "" && c.Password == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: c.Username, Password: c.Password}
}
