package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestQuietOutput(t *testing.T) {
	var q quietOutput
	q.Write([]byte("cfguard: NOT protected\n"))
	var ok, failedOut bytes.Buffer
	q.finish(&ok, exitOK)
	if ok.Len() != 0 {
		t.Errorf("success printed %q", ok.String())
	}
	q.finish(&failedOut, exitFailed)
	if failedOut.String() != "cfguard: NOT protected\n" {
		t.Errorf("failure printed %q", failedOut.String())
	}

	var big quietOutput
	chunk := bytes.Repeat([]byte("x"), 1000)
	for i := 0; i < 300; i++ {
		if n, err := big.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	var out bytes.Buffer
	big.finish(&out, exitFailed)
	if !strings.HasSuffix(out.String(), "(output cut at 256 KiB)\n") || out.Len() > quietLimit+100 {
		t.Errorf("held back %d bytes, want at most %d and a note", out.Len(), quietLimit)
	}
}

func TestQuietFlag(t *testing.T) {
	for _, args := range [][]string{{"--quiet"}, {"-q"}} {
		var stdout, stderr bytes.Buffer
		app, g := newAppGlobals(&stdout, &stderr)
		err := app.Run(t.Context(), append(append([]string{"cfguard"}, args...), "--state-dir", t.TempDir(), "ranges", "--offline"))
		finishQuiet(g, err)
		if err != nil || stdout.Len() != 0 {
			t.Errorf("%v ranges --offline: err %v, stdout %q; want success and nothing", args, err, stdout.String())
		}
	}
	var stdout, stderr bytes.Buffer
	app, g := newAppGlobals(&stdout, &stderr)
	err := app.Run(t.Context(), []string{"cfguard", "--state-dir", t.TempDir(), "ranges", "--offline"})
	finishQuiet(g, err)
	if err != nil || !strings.Contains(stdout.String(), "/") {
		t.Errorf("without --quiet: err %v, stdout %q; want the ranges", err, stdout.String())
	}
}
