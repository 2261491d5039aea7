package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
)

// TestManListsEveryCommandAndFlag: the page is generated from the same tree
// the binary parses, so every visible command and global flag is in it.
func TestManListsEveryCommandAndFlag(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1764633600") // 2025-12-02
	t.Setenv("CFGUARD_PORTS", "22")             // the page shows defaults, not the environment
	var out, errb bytes.Buffer
	if err := newApp(&out, &errb).Run(context.Background(), []string{"cfguard", "man"}); err != nil {
		t.Fatalf("cfguard man: %v\n%s", err, errb.String())
	}
	page := out.String()
	if !strings.HasPrefix(page, `.TH "CFGUARD" 1 "2025-12-02" "cfguard `) {
		t.Errorf("page does not start with its .TH line: %.80q", page)
	}
	app := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	for _, c := range app.Commands {
		if c.Hidden {
			if strings.Contains(page, `\fBcfguard `+c.Name+`\fR`) {
				t.Errorf("hidden command %s is in the page", c.Name)
			}
			continue
		}
		if !strings.Contains(page, `.SS "\fBcfguard `+strings.ReplaceAll(c.Name, "-", `\-`)) {
			t.Errorf("command %s missing from the page", c.Name)
		}
	}
	for _, f := range app.Flags {
		if !strings.Contains(page, `\fB\-\-`+strings.ReplaceAll(f.Names()[0], "-", `\-`)+`\fR`) {
			t.Errorf("flag --%s missing from the page", f.Names()[0])
		}
	}
	for _, s := range []string{`.SS "\fBcfguard completion\fR`, `Default: "80,443".`, ".SH ENVIRONMENT", ".B CFGUARD_PORTS", ".SH FILES"} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if strings.Contains(page, `Default: "22"`) {
		t.Error("page shows a default taken from the environment")
	}
	if _, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(page)
		if b, err := cmd.CombinedOutput(); err != nil || len(b) > 0 {
			t.Errorf("groff warns about the page: %v\n%s", err, b)
		}
	}
}

func TestManDate(t *testing.T) {
	for in, want := range map[string]string{"1764633600": "2025-12-02", "": "", "x": "", "-5": ""} {
		if got := manDate(in); got != want {
			t.Errorf("manDate(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestManRefusesArguments(t *testing.T) {
	var out, errb bytes.Buffer
	err := newApp(&out, &errb).Run(context.Background(), []string{"cfguard", "man", "extra"})
	if code := exitCode(err); code != exitUsage || out.Len() > 0 {
		t.Errorf("cfguard man extra: exit %d, stdout %q; want exit %d and nothing printed", code, out.String(), exitUsage)
	}
}
