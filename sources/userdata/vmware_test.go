package userdata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/guestinfo"
)

// fakeGuestInfo answers from keys, or fails with err.
type fakeGuestInfo struct {
	keys map[string]string
	err  error
	asks []string
}

func (f *fakeGuestInfo) Get(_ context.Context, key string) (string, bool, error) {
	f.asks = append(f.asks, key)
	if f.err != nil {
		return "", false, fmt.Errorf("read %s: %w", key, f.err)
	}
	v, ok := f.keys[key]
	return v, ok, nil
}

func TestVMwareProvider(t *testing.T) {
	doc := "[settings]\nmotd = \"vm\"\n"
	for _, tt := range []struct {
		name   string
		info   fakeGuestInfo
		want   string // "" = no user data
		errIs  error
		errMsg string
		asks   int
	}{
		{name: "not VMware", info: fakeGuestInfo{err: guestinfo.ErrNotVMware}, asks: 1},
		{name: "no userdata key", info: fakeGuestInfo{keys: map[string]string{}}, asks: 1},
		{name: "empty userdata", info: fakeGuestInfo{keys: map[string]string{"guestinfo.userdata": ""}}, asks: 1},
		{name: "raw without encoding", info: fakeGuestInfo{keys: map[string]string{"guestinfo.userdata": doc}}, want: doc, asks: 2},
		{
			name: "base64",
			info: fakeGuestInfo{keys: map[string]string{"guestinfo.userdata": encodeB64([]byte(doc)), "guestinfo.userdata.encoding": "base64"}},
			want: doc, asks: 2,
		},
		{
			name:   "bad encoding",
			info:   fakeGuestInfo{keys: map[string]string{"guestinfo.userdata": doc, "guestinfo.userdata.encoding": "uu"}},
			errMsg: `guestinfo.userdata.encoding "uu": expected base64`, asks: 2,
		},
		{
			name: "backdoor fault", info: fakeGuestInfo{err: guestinfo.ErrBackdoorFault},
			errIs: guestinfo.ErrBackdoorFault, errMsg: "read guestinfo.userdata: VMware backdoor call faulted", asks: 1,
		},
		{
			name: "broken channel", info: fakeGuestInfo{err: guestinfo.ErrRPC},
			errIs: guestinfo.ErrRPC, errMsg: "read guestinfo.userdata: RPCI exchange failed", asks: 1,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			info := tt.info
			data, err := VMwareProvider{Info: &info}.UserData(context.Background())
			if tt.errMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errMsg) || (tt.errIs != nil && !errors.Is(err, tt.errIs)) {
					t.Fatalf("err = %v, want %v containing %q", err, tt.errIs, tt.errMsg)
				}
			} else if err != nil || string(data) != tt.want || (tt.want == "") != (data == nil) {
				t.Fatalf("UserData = %q, %v; want %q", data, err, tt.want)
			}
			if len(info.asks) != tt.asks {
				t.Fatalf("asked %q, want %d keys", info.asks, tt.asks)
			}
		})
	}
}

// TestVMwareProviderHere uses the real backdoor reader on this machine,
// which is not VMware: no user data, no error, no crash.
func TestVMwareProviderHere(t *testing.T) {
	if guestinfo.IsVMware() {
		t.Fatal("this machine is a VMware VM: the test needs one that is not")
	}
	for _, p := range []VMwareProvider{{}, {Info: guestinfo.Reader{}}} {
		data, err := p.UserData(context.Background())
		if data != nil || err != nil {
			t.Fatalf("UserData = %q, %v; want no user data", data, err)
		}
	}
}

// TestRunSkipsVMwareHere runs the default provider chain with the real
// guestinfo reader: the file applies, VMware is skipped, the marker is
// written.
func TestRunSkipsVMwareHere(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "user-data.toml")
	if err := os.WriteFile(file, []byte("[settings]\nmotd = \"file\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ps, err := providers(options{providers: DefaultProviders, file: file})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name())
	}
	if want := []string{"file " + file, "config drive CIDATA", "EC2 IMDS", "VMware guestinfo"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("default providers %q, want %q", names, want)
	}
	// The config drive scans this machine's disks and IMDS would answer on
	// an EC2 build machine; keep file and VMware.
	ps = []Provider{ps[0], ps[3]}
	api := &recordingAPI{}
	var logs bytes.Buffer
	marker := filepath.Join(dir, "ran")
	res, err := Run(context.Background(), Config{Providers: ps, API: api, Transaction: "launch", Marker: marker, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Applied, []string{"file " + file}) || len(api.patches) != 1 {
		t.Fatalf("applied %q, patches %v", res.Applied, api.patches)
	}
	if !strings.Contains(logs.String(), `msg="no user data" provider="VMware guestinfo"`) {
		t.Fatalf("log does not say VMware had no user data:\n%s", logs.String())
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("marker: %v", err)
	}
}
