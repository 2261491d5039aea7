package recovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
	"unicode"
)

// Bounds on a configuration test.
const (
	// ConfigTestTimeout bounds one configuration test (php-fpm -t reads
	// every pool; nginx -t may resolve upstream names).
	ConfigTestTimeout = 30 * time.Second
	// maxTestOutput bounds what is kept of the test's output.
	maxTestOutput = 64 << 10
	// maxReasonLine bounds the error line quoted in a refusal.
	maxReasonLine = 240
)

// runFunc runs a command and returns its combined output (bounded) and its
// error. It is the seam over os/exec.
type runFunc func(ctx context.Context, argv []string) ([]byte, error)

// execRun runs argv with the locale fixed, so the output is the same
// English the tests and the fix texts expect.
func execRun(ctx context.Context, argv []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	out := &boundedBuffer{max: maxTestOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	return out.Bytes(), err
}

// configTestTimeout is ConfigTestTimeout; tests shorten it.
var configTestTimeout = ConfigTestTimeout

// configTest runs argv bounded by ConfigTestTimeout and returns "" when it
// passed, else the one-line reason for refusing the restart. The error is
// ctx's when ctx ended first: then nothing was decided.
func configTest(ctx context.Context, run runFunc, argv []string) (string, error) {
	if len(argv) == 0 {
		return "", nil
	}
	tctx, cancel := context.WithTimeout(ctx, configTestTimeout)
	defer cancel()
	out, err := run(tctx, argv)
	if err == nil {
		return "", nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if tctx.Err() != nil {
		return fmt.Sprintf("configuration test %s did not finish in %s", strings.Join(argv, " "), configTestTimeout), nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		// Not started at all (not installed, not executable).
		return "configuration test failed: " + clean(err.Error()), nil
	}
	if line := firstErrorLine(out); line != "" {
		return "configuration test failed: " + line, nil
	}
	return fmt.Sprintf("configuration test failed: %s: %v", strings.Join(argv, " "), err), nil
}

// firstErrorLine picks the line of a configuration test's output that names
// the error: the first that says error, emerg, syntax or fail, else the
// first line with any text. PHP-FPM's timestamp prefix is dropped.
func firstErrorLine(out []byte) string {
	var first string
	for _, line := range strings.Split(string(out), "\n") {
		line = clean(stripStamp(line))
		if line == "" {
			continue
		}
		if first == "" {
			first = line
		}
		l := strings.ToLower(line)
		for _, w := range []string{"error", "emerg", "syntax", "fail"} {
			if strings.Contains(l, w) {
				return line
			}
		}
	}
	return first
}

// stripStamp drops a leading "[02-Dec-2026 03:00:00] " as PHP-FPM writes it.
func stripStamp(line string) string {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "[") {
		if i := strings.Index(line, "] "); i > 0 && i < 32 && strings.ContainsAny(line[1:i], "0123456789") && strings.Contains(line[1:i], ":") {
			return line[i+2:]
		}
	}
	return line
}

// clean makes s one printable line of bounded length.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxReasonLine {
		s = strings.ToValidUTF8(s[:maxReasonLine], "") + "…"
	}
	return s
}

// boundedBuffer keeps the first max bytes written to it and drops the rest.
// (Not an embedded bytes.Buffer: io.Copy would use its ReadFrom and read
// without bound.)
type boundedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *boundedBuffer) Bytes() []byte { return b.buf.Bytes() }
