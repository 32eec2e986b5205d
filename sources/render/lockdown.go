package render

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/petrel-os/petrel/sources/apiclient"
)

// DefaultLockdownFile is the kernel's lockdown control in securityfs.
const DefaultLockdownFile = "/sys/kernel/security/lockdown"

// LockdownKey is the setting that names the lockdown level.
const LockdownKey = "settings.kernel.lockdown"

// lockdownLevels are the kernel's lockdown levels, lowest first.
var lockdownLevels = []string{"none", "integrity", "confidentiality"}

// SetLockdown raises the kernel's lockdown level, as shown and set through
// file (DefaultLockdownFile, which reads like "none [integrity]
// confidentiality"), to want. The kernel refuses to lower it while running:
// a lower want is logged as taking effect at the next boot, and is not an
// error. A raised level is printed to out as "petrel: kernel lockdown
// LEVEL".
func SetLockdown(file, want string, out io.Writer, log *slog.Logger) error {
	wantRank := slices.Index(lockdownLevels, want)
	if wantRank < 0 {
		return fmt.Errorf("set kernel lockdown: unknown level %q (expected one of %s)", want, strings.Join(lockdownLevels, ", "))
	}
	cur, offered, err := readLockdown(file)
	if err != nil {
		return err
	}
	if !slices.Contains(offered, want) {
		return fmt.Errorf("set kernel lockdown to %s: the kernel offers only %s (%s)", want, strings.Join(offered, ", "), file)
	}
	switch curRank := slices.Index(lockdownLevels, cur); {
	case curRank == wantRank:
		log.Info("kernel lockdown already at the level set", "level", cur)
		return nil
	case curRank > wantRank:
		log.Warn("kernel lockdown cannot be lowered while the kernel runs; the setting takes effect after a reboot",
			"level", cur, "setting", want)
		return nil
	}
	// The kernel refuses a write it does not carry out (EPERM, EINVAL)
	// and logs "Kernel is locked down from securityfs" when it does.
	if err := os.WriteFile(file, []byte(want), 0); err != nil {
		return fmt.Errorf("set kernel lockdown to %s: %w", want, err)
	}
	fmt.Fprintf(out, "petrel: kernel lockdown %s\n", want)
	return nil
}

// readLockdown returns the current level (the one in brackets) and the
// levels the kernel offers.
func readLockdown(file string) (cur string, offered []string, err error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", nil, fmt.Errorf("read kernel lockdown: %w", err)
	}
	for _, f := range strings.Fields(string(data)) {
		if l, ok := strings.CutPrefix(f, "["); ok {
			if l, ok = strings.CutSuffix(l, "]"); !ok || cur != "" {
				return "", nil, fmt.Errorf("read kernel lockdown from %s: cannot parse %q", file, data)
			}
			cur, f = l, l
		}
		offered = append(offered, f)
	}
	if cur == "" {
		return "", nil, fmt.Errorf("read kernel lockdown from %s: no current level in %q", file, data)
	}
	return cur, offered, nil
}

// lockdownFromAPI reads LockdownKey through the API and applies it with
// SetLockdown; an unset setting leaves the kernel as it is.
func lockdownFromAPI(ctx context.Context, client *apiclient.Client, file string, out io.Writer, log *slog.Logger) error {
	got, err := client.GetKeys(ctx, []string{LockdownKey})
	if err != nil {
		return fmt.Errorf("read %s: %w", LockdownKey, err)
	}
	kernel, _ := got["kernel"].(map[string]any)
	level, ok := kernel["lockdown"].(string)
	if !ok {
		log.Info("kernel lockdown not set; left as it is", "key", LockdownKey)
		return nil
	}
	return SetLockdown(file, level, out, log)
}
