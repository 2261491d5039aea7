package nstest

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// childEnv marks a test binary that Reexec started: its value is the name
// of the test the child is to run inside the namespace.
const childEnv = "CFGUARD_NSTEST_CHILD"

// reexecGrace is taken off the parent's deadline for the child, so that a
// hung child is reported by the parent rather than killed with it.
const reexecGrace = 10 * time.Second

// IsChild reports whether this process is the child Reexec started for
// test t, i.e. whether t now runs inside the namespace. A test that uses
// Reexec starts with
//
//	if nstest.IsChild(t) {
//		... the probes, which now act inside the namespace ...
//		return
//	}
//	ns := nstest.New(t)
//	... set the namespace up ...
//	nstest.Reexec(t, ns, "KEY=value")
//
// Everything the child needs from the parent (paths, addresses) goes
// through the environment.
func IsChild(t testing.TB) bool {
	return os.Getenv(childEnv) == t.Name()
}

// Reexec runs the current test again, in a child process of the test
// binary started inside ns with `ip netns exec`, with env added to its
// environment. Every thread of the child — so every goroutine, including
// net/http's dialers — lives in the namespace. The child's output is logged
// (always when it fails, with -v otherwise) and its failure fails t.
// Subtests of the child are reported in that output.
func Reexec(t testing.TB, ns *NS, env ...string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("reexec: finding the test binary: %v", err)
	}
	ctx := context.Background()
	if dl, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := dl.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, d.Add(-reexecGrace))
			defer cancel()
		}
	}
	args := []string{"-test.run=" + runPattern(t.Name()), "-test.count=1", "-test.v"}
	if d, ok := ctx.Deadline(); ok {
		args = append(args, "-test.timeout="+time.Until(d).Round(time.Second).String())
	}
	cmd := ns.Command(ctx, exe, args...)
	cmd.Env = append(append(os.Environ(), childEnv+"="+t.Name()), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if err != nil {
		t.Fatalf("in %s, the child test %s failed: %v\n%s", ns.Name, t.Name(), err, out.String())
	}
	if testing.Verbose() {
		t.Logf("child in %s:\n%s", ns.Name, out.String())
	}
	if !strings.Contains(out.String(), "--- PASS: "+t.Name()) && !strings.Contains(out.String(), "--- SKIP: "+t.Name()) {
		t.Fatalf("in %s, the child did not run %s:\n%s", ns.Name, t.Name(), out.String())
	}
}

// runPattern is the -test.run pattern that selects exactly the test name
// (with its subtest path).
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}
