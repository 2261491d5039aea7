package sdtest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// childEnv names the child function a test binary re-executed inside a
// sandbox is to run instead of its tests.
const childEnv = "CFGUARD_SDTEST_CHILD"

// ChildTimeout bounds one child run.
const ChildTimeout = 2 * time.Minute

// exeInside is where the test binary is put in the sandbox.
const exeInside = "/usr/local/lib/cfguard-sdtest/test.bin"

// Main runs the tests, or, in a test binary that RunChild started inside a
// sandbox, the child function it names: its error is printed and the
// process exits 1, else it exits 0. A package whose tests act inside a
// sandbox (Go code talking to the sandbox's D-Bus, dialling its loopback)
// uses it from TestMain:
//
//	func TestMain(m *testing.M) {
//		sdtest.Main(m, map[string]func() error{"ping": pingChild})
//	}
func Main(m *testing.M, children map[string]func() error) {
	name := os.Getenv(childEnv)
	if name == "" {
		os.Exit(m.Run())
	}
	fn, ok := children[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "sdtest: no child function %q\n", name)
		os.Exit(1)
	}
	if err := fn(); err != nil {
		fmt.Fprintf(os.Stderr, "sdtest child %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// RunChild runs the child function name of this test binary inside the
// sandbox, with env added to its environment, bounded by ChildTimeout. The
// test binary is copied in once. It returns the child's output and its
// error (nil when the child returned nil).
func (s *Sandbox) RunChild(t testing.TB, name string, env ...string) (string, error) {
	t.Helper()
	if s.exe == "" {
		exe, err := os.Executable()
		if err != nil {
			t.Fatalf("finding the test binary: %v", err)
		}
		s.Install(t, exe, exeInside, 0o755)
		s.exe = exeInside
	}
	ctx, cancel := context.WithTimeout(context.Background(), ChildTimeout)
	defer cancel()
	cmd := s.Command(ctx, s.exe)
	cmd.Env = append(append(cmd.Env, childEnv+"="+name), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("child %s in the sandbox: %w", name, err)
	}
	return string(out), err
}
