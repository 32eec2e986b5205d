package settings

import (
	"context"
	"os"
	"strings"
)

// ChangedEnv is the environment variable through which settings-applier
// tells a service's restart command which settings changed: their keys,
// separated by spaces. Unset or empty means every setting (a boot, or
// settings-applier --all).
const ChangedEnv = "CHANGED_SETTINGS"

type changedKey struct{}

// WithChanged returns ctx carrying the changed keys for a restart command
// that settings-applier runs in its own process instead of a new one; nil
// keys mean every setting.
func WithChanged(ctx context.Context, keys []string) context.Context {
	return context.WithValue(ctx, changedKey{}, keys)
}

// Changed returns the keys a restart command is to apply: those ctx
// carries (WithChanged), else those of ChangedEnv. Nil means every
// setting.
func Changed(ctx context.Context) []string {
	if keys, ok := ctx.Value(changedKey{}).([]string); ok {
		return keys
	}
	return strings.Fields(os.Getenv(ChangedEnv))
}
