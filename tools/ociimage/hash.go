package ociimage

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func v1Hash(d string) (v1.Hash, error) {
	h, err := v1.NewHash(d)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("parse digest %q: %w", d, err)
	}
	return h, nil
}
