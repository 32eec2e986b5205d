package hostctr

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/api"
)

// recordUnits records the unit jobs Configure asks for; a unit named in
// fail fails.
type recordUnits struct {
	calls  []string
	fail   string
	active map[string]bool
}

func (u *recordUnits) do(verb, unit string) error {
	u.calls = append(u.calls, verb+" "+unit)
	if unit == u.fail {
		return fmt.Errorf("%s %s: job failed", verb, unit)
	}
	return nil
}
func (u *recordUnits) StartUnit(_ context.Context, unit string) error   { return u.do("start", unit) }
func (u *recordUnits) RestartUnit(_ context.Context, unit string) error { return u.do("restart", unit) }
func (u *recordUnits) StopUnit(_ context.Context, unit string) error    { return u.do("stop", unit) }
func (u *recordUnits) Active(_ context.Context, unit string) (bool, error) {
	if unit == u.fail {
		return false, fmt.Errorf("read the state of %s: no answer", unit)
	}
	return u.active[unit], nil
}

func TestConfigure(t *testing.T) {
	s := &Settings{HostContainers: map[string]HostContainer{
		"admin":   {Enabled: false, Superpowered: true, Source: "r.example/admin:1"},
		"control": {Enabled: true, Source: "r.example/control:1"},
		"extra":   {Enabled: true, Source: "r.example/extra:1"},
	}}
	for _, tc := range []struct {
		name    string
		changed []string
		fail    string
		active  bool // admin's unit runs
		want    []string
		wantErr string
	}{
		{name: "boot: start enabled, disabled not running", want: []string{
			"start host-containers@control.service", "start host-containers@extra.service"}},
		{name: "boot: start enabled, stop disabled that runs", active: true, want: []string{
			"stop host-containers@admin.service", "start host-containers@control.service", "start host-containers@extra.service"}},
		{name: "one container changed", changed: []string{"settings.host-containers.control.source"},
			want: []string{"restart host-containers@control.service"}},
		{name: "disabled at runtime", changed: []string{"settings.host-containers.admin.enabled", "settings.motd"}, active: true,
			want: []string{"stop host-containers@admin.service"}},
		{name: "a prefix of another name is not it", changed: []string{"settings.host-containers.ext"}, want: nil},
		{name: "registry settings restart all", changed: []string{"settings.container-registry.insecure-registries"}, active: true, want: []string{
			"stop host-containers@admin.service", "restart host-containers@control.service", "restart host-containers@extra.service"}},
		{name: "state unknown: stop", fail: "host-containers@admin.service", want: []string{
			"stop host-containers@admin.service", "start host-containers@control.service", "start host-containers@extra.service"},
			wantErr: "host container admin: stop host-containers@admin.service: job failed"},
		{name: "one failure does not stop the others", fail: "host-containers@control.service", want: []string{
			"start host-containers@control.service", "start host-containers@extra.service"},
			wantErr: "host container control: start host-containers@control.service: job failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			units := &recordUnits{fail: tc.fail, active: map[string]bool{"host-containers@admin.service": tc.active}}
			err := Configure(context.Background(), s, tc.changed, units, dir, nil)
			if !slices.Equal(units.calls, tc.want) {
				t.Errorf("unit jobs = %q, want %q", units.calls, tc.want)
			}
			if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Configure = %v, want an error containing %q", err, tc.wantErr)
			}
			st, rerr := api.ReadContainerStatuses(dir)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if tc.changed == nil || slices.Contains(tc.want, "stop host-containers@admin.service") {
				if got := st["admin"]; got.State != api.ContainerDisabled || !got.Superpowered {
					t.Errorf("status of the disabled admin container = %+v, want disabled", got)
				}
			}
		})
	}
}

func TestRegistryCredentials(t *testing.T) {
	r := RegistryConfig{Credentials: []Credential{
		{Registry: "a.example", Username: "u", Password: "p"},
		{Registry: "b.example", Auth: "dTI6cDI="}, // u2:p2
		{Registry: "c.example", IdentityToken: "tok"},
		{Registry: "d.example", Auth: "bm9jb2xvbg=="}, // "nocolon"
		{Registry: "a.example", Username: "second", Password: "ignored"},
	}, InsecureRegistries: []string{"10.0.2.100:5000"}}
	for host, want := range map[string]string{"a.example": "u:p", "b.example": "u2:p2", "c.example": ":tok", "other.example": ":"} {
		u, p, err := r.credentials(host)
		if err != nil || u+":"+p != want {
			t.Errorf("credentials(%s) = %q, %q, %v; want %s", host, u, p, err, want)
		}
	}
	if _, _, err := r.credentials("d.example"); err == nil || !strings.Contains(err.Error(), "settings.container-registry.credentials.3.auth: expected base64 of user:password") {
		t.Errorf("credentials of an auth without a colon: %v", err)
	}
	if !r.insecure("10.0.2.100:5000") || r.insecure("10.0.2.100") {
		t.Error("insecure registries are matched by host and port")
	}
}

func TestDecodeUserData(t *testing.T) {
	if b, err := decodeUserData("k", "aGk="); err != nil || string(b) != "hi" {
		t.Errorf("decodeUserData(aGk=) = %q, %v", b, err)
	}
	_, err := decodeUserData("settings.host-containers.admin.user-data", "not base64!")
	if err == nil || !strings.Contains(err.Error(), "decode settings.host-containers.admin.user-data: expected base64") {
		t.Errorf("decodeUserData of bad base64 = %v", err)
	}
}
