package userdata

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/petrel-os/petrel/sources/guestinfo"
)

// GuestInfo reads VMware guestinfo keys; ok is false when the key is not
// set, and errors name the key. guestinfo.Reader reads them through the
// backdoor port and returns guestinfo.ErrNotVMware off VMware.
type GuestInfo interface {
	Get(ctx context.Context, key string) (value string, ok bool, err error)
}

// VMwareProvider reads guestinfo.userdata, decoded according to
// guestinfo.userdata.encoding. Off VMware (guestinfo.ErrNotVMware) it has
// no user data.
type VMwareProvider struct {
	Info GuestInfo // default guestinfo.Reader{}, the hypervisor's backdoor
}

// Name implements Provider.
func (p VMwareProvider) Name() string { return "VMware guestinfo" }

// UserData implements Provider.
func (p VMwareProvider) UserData(ctx context.Context) ([]byte, error) {
	info := p.Info
	if info == nil {
		info = guestinfo.Reader{}
	}
	data, ok, err := info.Get(ctx, "guestinfo.userdata")
	if errors.Is(err, guestinfo.ErrNotVMware) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !ok || data == "" {
		return nil, nil
	}
	enc, _, err := info.Get(ctx, "guestinfo.userdata.encoding")
	if err != nil {
		return nil, err
	}
	return DecodeGuestInfo(data, enc)
}

// DecodeGuestInfo decodes guestinfo user data: encoding "" or "raw" is the
// data itself; "base64"/"b64" and "gzip+base64"/"gz+b64" are base64 (the
// gzip is then removed by Parse, which detects its magic bytes).
func DecodeGuestInfo(data, encoding string) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "raw":
		return []byte(data), nil
	case "base64", "b64", "gzip+base64", "gz+b64":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(data), ""))
		if err != nil {
			return nil, fmt.Errorf("decode guestinfo.userdata as %s: %w", encoding, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("guestinfo.userdata.encoding %q: expected base64, b64, gzip+base64, gz+b64 or raw", encoding)
}
