package settings_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/petrel-os/petrel/sources/settings"
)

func TestChanged(t *testing.T) {
	t.Setenv(settings.ChangedEnv, "settings.env")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want []string
	}{
		{"environment", ctx, []string{"settings.env"}},
		{"context", settings.WithChanged(ctx, []string{"settings.x"}), []string{"settings.x"}},
		{"context, every setting", settings.WithChanged(ctx, nil), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := settings.Changed(tc.ctx); fmt.Sprint(got) != fmt.Sprint(tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("Changed = %#v, want %#v", got, tc.want)
			}
		})
	}
}
