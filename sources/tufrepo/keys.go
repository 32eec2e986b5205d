package tufrepo

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Key is an ed25519 signing key of a role.
type Key struct {
	private ed25519.PrivateKey
	public  *metadata.Key
	id      string
	signer  signature.Signer
}

// NewKey generates an ed25519 key.
func NewKey() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return newKey(priv)
}

func newKey(priv ed25519.PrivateKey) (*Key, error) {
	pub, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("describe public key: %w", err)
	}
	id, err := pub.ID()
	if err != nil {
		return nil, err
	}
	s, err := signature.LoadED25519Signer(priv)
	if err != nil {
		return nil, fmt.Errorf("load ed25519 signer: %w", err)
	}
	return &Key{private: priv, public: pub, id: id, signer: s}, nil
}

// ParseKey reads a PKCS #8 PEM ed25519 private key ("PRIVATE KEY").
func ParseKey(data []byte) (*Key, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("expected a PEM \"PRIVATE KEY\" block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS #8 key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("expected an ed25519 key, got %T", k)
	}
	return newKey(priv)
}

// LoadKey reads the key in the PEM file path.
func LoadKey(path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	return k, nil
}

// PEM returns the private key as PKCS #8 PEM.
func (k *Key) PEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k.private)
	if err != nil {
		panic(err) // an ed25519 key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// ID returns the TUF key ID.
func (k *Key) ID() string { return k.id }

// Public returns the public key as TUF metadata lists it.
func (k *Key) Public() *metadata.Key { return k.public }

// Signer returns the key as go-tuf signs with it.
func (k *Key) Signer() signature.Signer { return k.signer }
