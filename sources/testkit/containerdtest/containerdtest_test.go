package containerdtest_test

import (
	"context"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/sources/testkit/containerdtest"
)

// TestRun starts the daemon and a container, and finds its task running.
func TestRun(t *testing.T) {
	d := containerdtest.Start(t, containerdtest.Tools{Containerd: testkit.Tool(t, "containerd"), Runc: testkit.Tool(t, "runc"),
		Busybox: testkit.Tool(t, "/bin/busybox")})
	task := d.Run(t, "admin")
	st, err := task.Status(context.Background())
	if err != nil || st.Status != containerd.Running {
		t.Fatalf("task status = %+v, %v; want running", st, err)
	}
}
