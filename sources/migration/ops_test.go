package migration

import (
	"errors"
	"strings"
	"testing"
)

// opCases exercise every operation on baseData: what forward changes,
// and what backward changes on a datastore that never went forward (a
// host installed at the newer version and then downgraded). Every case
// also checks that forward then backward gives baseData back exactly.
type opCase struct {
	name, ops string
	forward   string // changes after forward, as changes() prints them
	fresh     string // a datastore of the newer version ...
	backward  string // ... and what backward changes in it
}

func opCases() []opCase {
	return []opCase{
		{
			name: "add-settings",
			ops:  `kind = "add-settings"` + "\n" + `keys = ["settings.bootstrap-containers", "settings.network.no-proxy"]`,
			fresh: `live settings.bootstrap-containers.x.mode "once"
tx petrel-launch settings.network.no-proxy ["localhost"]
meta settings.bootstrap-containers affected-services ["bootstrap"]
live settings.motd "kept"`,
			backward: `-live settings.bootstrap-containers.x.mode "once"
-meta settings.bootstrap-containers affected-services ["bootstrap"]
-tx petrel-launch settings.network.no-proxy ["localhost"]`,
		},
		{
			name:    "add-settings over existing values keeps them",
			ops:     `kind = "add-settings"` + "\n" + `keys = ["settings.network"]`,
			forward: "",
		},
		{
			name: "remove-settings",
			ops:  `kind = "remove-settings"` + "\n" + `keys = ["settings.network", "settings.updates.seed"]`,
			forward: `-live settings.network.hostname "host-1"
-live settings.network.https-proxy "proxy:3128"
-live settings.updates.seed 42
-meta settings.network affected-services ["network"]
-meta settings.updates.seed setting-generator "/usr/bin/sundog generate-seed"
-tx petrel-launch settings.network.hostname "host-2"`,
			fresh: `live settings.motd "x"`, backward: "",
		},
		{
			name: "move a setting",
			ops:  `kind = "move"` + "\n" + `from = "settings.motd"` + "\n" + `to = "settings.greeting.text"`,
			forward: `+live settings.greeting.text "hello"
+meta settings.greeting.text affected-services ["motd"]
+tx petrel-launch settings.greeting.text "pending motd"
-live settings.motd "hello"
-meta settings.motd affected-services ["motd"]
-tx petrel-launch settings.motd "pending motd"`,
			fresh: `live settings.greeting.text "hi"`,
			backward: `-live settings.greeting.text "hi"
+live settings.motd "hi"`,
		},
		{
			name: "move a prefix onto existing values",
			ops:  `kind = "move"` + "\n" + `from = "settings.network"` + "\n" + `to = "settings.ntp"`,
			forward: `-live settings.network.hostname "host-1"
-live settings.network.https-proxy "proxy:3128"
-meta settings.network affected-services ["network"]
+meta settings.ntp affected-services ["network"]
+live settings.ntp.hostname "host-1"
+live settings.ntp.https-proxy "proxy:3128"
-live settings.ntp.time-servers ["a.pool","b.pool"]
-tx petrel-launch settings.network.hostname "host-2"
+tx petrel-launch settings.ntp.hostname "host-2"`,
		},
		{
			name: "replace-value",
			ops: `kind = "replace-value"
key = "settings.updates.metadata-base-url"
old = "https://old.example/meta"
new = "https://new.example/meta"`,
			// The transaction "other" already had the new value: it is
			// kept as it was by the backward of the round trip.
			forward: `-live settings.updates.metadata-base-url "https://old.example/meta"
+live settings.updates.metadata-base-url "https://new.example/meta"`,
			fresh: `live settings.updates.metadata-base-url "https://new.example/meta"
tx t settings.updates.metadata-base-url "https://custom/"`,
			backward: `-live settings.updates.metadata-base-url "https://new.example/meta"
+live settings.updates.metadata-base-url "https://old.example/meta"`,
		},
		{
			name: "replace-value of a list with a map",
			ops: `kind = "replace-value"
key = "settings.ntp.time-servers"
map = [{old = ["a.pool", "b.pool"], new = ["c.pool"]}, {old = ["c.pool"], new = ["a.pool", "b.pool"]}]`,
			forward: `-live settings.ntp.time-servers ["a.pool","b.pool"]
+live settings.ntp.time-servers ["c.pool"]`,
			fresh:    `live settings.ntp.time-servers ["c.pool"]`,
			backward: `-live settings.ntp.time-servers ["c.pool"]` + "\n" + `+live settings.ntp.time-servers ["a.pool","b.pool"]`,
		},
		{
			name: "replace-template",
			ops: `kind = "replace-template"
key = "configuration-files.motd"
old = "{{settings.motd}}"
new = "{{settings.greeting.text}}"`,
			forward: `-meta configuration-files.motd template "{{settings.motd}}"
+meta configuration-files.motd template "{{settings.greeting.text}}"`,
			fresh: `meta configuration-files.motd template "{{settings.greeting.text}}"`,
			backward: `-meta configuration-files.motd template "{{settings.greeting.text}}"
+meta configuration-files.motd template "{{settings.motd}}"`,
		},
		{
			name: "replace-generator regenerates",
			ops: `kind = "replace-generator"
key = "settings.updates.seed"
old = "/usr/bin/sundog generate-seed"
new = "/usr/bin/sundog generate-seed --v2"
regenerate = true`,
			forward: `-live settings.updates.seed 42
-meta settings.updates.seed setting-generator "/usr/bin/sundog generate-seed"
+meta settings.updates.seed setting-generator "/usr/bin/sundog generate-seed --v2"`,
			fresh: `live settings.updates.seed 7
meta settings.updates.seed setting-generator "/usr/bin/sundog generate-seed --v2"`,
			backward: `-live settings.updates.seed 7
-meta settings.updates.seed setting-generator "/usr/bin/sundog generate-seed --v2"
+meta settings.updates.seed setting-generator "/usr/bin/sundog generate-seed"`,
		},
		{
			name: "add-metadata",
			ops:  `kind = "add-metadata"` + "\n" + `key = "settings.motd"` + "\n" + `meta = "affected-services"` + "\n" + `value = ["motd", "issue"]`,
			forward: `-meta settings.motd affected-services ["motd"]
+meta settings.motd affected-services ["motd","issue"]`,
			fresh:    `meta settings.motd affected-services ["motd","issue"]`,
			backward: `-meta settings.motd affected-services ["motd","issue"]`,
		},
		{
			name:    "remove-metadata",
			ops:     `kind = "remove-metadata"` + "\n" + `key = "settings.network"` + "\n" + `meta = "affected-services"`,
			forward: `-meta settings.network affected-services ["network"]`,
			fresh:   `live settings.motd "x"`, backward: "",
		},
		{
			name: "replace-metadata",
			ops: `kind = "replace-metadata"
key = "settings.motd"
meta = "affected-services"
old = ["motd"]
new = ["motd", "issue"]`,
			forward: `-meta settings.motd affected-services ["motd"]
+meta settings.motd affected-services ["motd","issue"]`,
			fresh: `meta settings.motd affected-services ["motd","issue"]`,
			backward: `-meta settings.motd affected-services ["motd","issue"]
+meta settings.motd affected-services ["motd"]`,
		},
		{
			name:    "function",
			ops:     `kind = "function"` + "\n" + `name = "shout-motd"`,
			forward: `-live settings.motd "hello"` + "\n" + `+live settings.motd "HELLO"`,
			fresh:   `live settings.motd "HI"`, backward: "",
		},
	}
}

func TestOperations(t *testing.T) {
	t.Parallel()
	for _, tc := range opCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := mustParse(t, "migrate_v1.1.0_test.toml", "[[operation]]\n"+tc.ops+"\n")
			base := parseData(t, baseData)
			d := parseData(t, baseData)
			saves := Saves{}
			if err := Apply(d, saves, []*Migration{m}, Forward, testFunctions()); err != nil {
				t.Fatal(err)
			}
			if got := changes(base, d); got != sortLines(tc.forward) {
				t.Errorf("forward changed:\n%s\nwant:\n%s", got, tc.forward)
			}
			if err := Apply(d, saves, []*Migration{m}, Backward, testFunctions()); err != nil {
				t.Fatal(err)
			}
			if diff := Diff(base, d); diff != "" {
				t.Errorf("forward then backward differs from the start: %s", diff)
			}
			if len(saves) != 0 {
				t.Errorf("saves left after backward: %v", saves)
			}
			if tc.fresh == "" {
				return
			}
			fresh, d := parseData(t, tc.fresh), parseData(t, tc.fresh)
			if err := Apply(d, Saves{}, []*Migration{m}, Backward, testFunctions()); err != nil {
				t.Fatal(err)
			}
			if got := changes(fresh, d); got != sortLines(tc.backward) {
				t.Errorf("backward without a forward changed:\n%s\nwant:\n%s", got, tc.backward)
			}
		})
	}
}

// TestChainRoundTrip runs three migrations forward and back: values
// moved, replaced and removed by one migration and touched again by the
// next come back exactly, and the record of each migration is dropped by
// its backward.
func TestChainRoundTrip(t *testing.T) {
	t.Parallel()
	ms := []*Migration{
		mustParse(t, "m1", `[[operation]]
kind = "move"
from = "settings.motd"
to = "settings.greeting.text"
[[operation]]
kind = "remove-settings"
keys = ["settings.network.https-proxy"]`),
		mustParse(t, "m2", `[[operation]]
kind = "replace-value"
key = "settings.greeting.text"
old = "hello"
new = "hi"
[[operation]]
kind = "add-settings"
keys = ["settings.network.https-proxy"]`),
		mustParse(t, "m3", `[[operation]]
kind = "move"
from = "settings.greeting"
to = "settings.motd-v3"
[[operation]]
kind = "function"
name = "shout-motd"`),
	}
	base, d := parseData(t, baseData), parseData(t, baseData)
	saves := Saves{}
	if err := Apply(d, saves, ms, Forward, testFunctions()); err != nil {
		t.Fatal(err)
	}
	if v := d.Live["settings.motd-v3.text"].Value; string(v) != `"hi"` {
		t.Fatalf("after forward settings.motd-v3.text = %s", v)
	}
	if _, ok := saves["m1"][1]; !ok || len(saves) != 3 {
		t.Fatalf("saves = %v", saves)
	}
	rev := []*Migration{ms[2], ms[1], ms[0]}
	if err := Apply(d, saves, rev, Backward, testFunctions()); err != nil {
		t.Fatal(err)
	}
	if diff := Diff(base, d); diff != "" || len(saves) != 0 {
		t.Fatalf("round trip: %s; saves %v", diff, saves)
	}
}

func TestApplyFailures(t *testing.T) {
	t.Parallel()
	long := "settings." + strings.Repeat(strings.Repeat("x", 50)+".", 4) + strings.Repeat("y", 37) // 250 bytes
	m := mustParse(t, "m", `[[operation]]
kind = "move"
from = "settings.network"
to = "`+long+`"`)
	err := Apply(parseData(t, baseData), Saves{}, []*Migration{m}, Forward, nil)
	if err == nil || !strings.Contains(err.Error(), "migration m: operation[0] (move) forward: move settings.network.hostname to "+long) {
		t.Fatalf("move to a too long key: %v", err)
	}
	f, err := Parse("f", []byte("[[operation]]\nkind = \"function\"\nname = \"gone\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(parseData(t, baseData), Saves{}, []*Migration{f}, Backward, Builtins()); !errors.Is(err, ErrUnknownFunction) ||
		!strings.Contains(err.Error(), `migration f: operation[0] (function) backward: unknown migration function "gone"`) {
		t.Fatalf("unknown function: %v", err)
	}
}
