package buildctl_test

import (
	"context"
	"slices"
	"testing"

	"github.com/petrel-os/petrel/tools/graph"
	"github.com/petrel-os/petrel/tools/project"
)

// TestDebugAPIClosure checks, on this repository's variants, that the API
// bridge agent is in an image's package closure exactly when the variant
// has the debug-api image feature: on in the *-dev variants, and gone from
// every one of them with the feature turned off.
func TestDebugAPIClosure(t *testing.T) {
	p, err := project.Load(context.Background(), "../..")
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.New(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"metal-dev", "aws-dev", "vmware-dev"} {
		v, err := p.Variant(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			if !v.Feature("debug-api") {
				t.Fatalf("%s: image-features.debug-api is off; the *-dev variants have it on", name)
			}
			for _, on := range []bool{true, false} {
				w := *v
				w.ImageFeatures = map[string]bool{"debug-api": on}
				closure, err := g.Closure(w.Packages()...)
				if err != nil {
					t.Fatal(err)
				}
				if got := slices.Contains(closure, "api-bridge"); got != on {
					t.Errorf("debug-api = %v: api-bridge in the closure = %v, want %v (closure %v)", on, got, on, closure)
				}
				if !slices.Contains(closure, "os") {
					t.Errorf("debug-api = %v: closure %v lacks os", on, closure)
				}
			}
		})
	}
}
