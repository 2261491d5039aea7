package backend

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/nstest"
)

// TestScanProcsOwnNetNS: a process in another network namespace (a
// container, a systemd test sandbox) is not this host's web server or
// backend; one in the caller's namespace is.
func TestScanProcsOwnNetNS(t *testing.T) {
	nstest.RequireRoot(t)
	a, b := nstest.New(t), nstest.New(t)
	cmd := a.Start("sleep", "60")
	pid := cmd.Process.Pid
	// The command may start as `ip netns exec`, which joins the namespace
	// and then becomes sleep: wait (bounded) for that.
	for i := 0; ; i++ {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(b)) == "sleep" {
			break
		}
		if i == 500 {
			t.Fatalf("pid %d never became sleep", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	has := func(ns *nstest.NS) bool {
		var found bool
		if err := ns.Do(func() error {
			ps, _ := scanProcs("/proc")
			for _, p := range ps {
				found = found || p.pid == pid
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return found
	}
	if !has(a) {
		t.Errorf("pid %d in namespace %s was not listed from inside it", pid, a.Name)
	}
	if has(b) {
		t.Errorf("pid %d in namespace %s was listed from namespace %s", pid, a.Name, b.Name)
	}
}
