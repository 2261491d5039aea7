package manpage

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/urfave/cli/v3"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// tree is a small CLI with every kind of thing Write renders or skips.
func tree() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "show what the generator does",
		Description: "First paragraph, with a back\\slash, -dashes and an ellipsis…\n\n" +
			".starts with a dot, which roff would take for a macro\n" +
			"Example:\n" +
			"  demo sync --ports 80,443\n\n" +
			"Last paragraph.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ports", Value: "80,443", Sources: cli.EnvVars("DEMO_PORTS"), Usage: "TCP ports to guard"},
			&cli.BoolFlag{Name: "debug", Aliases: []string{"d"}, Sources: cli.EnvVars("DEMO_DEBUG"), Usage: "log to stderr"},
			&cli.StringFlag{Name: "secret", Hidden: true, Usage: "never shown"},
		},
		Commands: []*cli.Command{
			{
				Name:      "sync",
				Usage:     "fetch and apply the list",
				ArgsUsage: "[zone]",
				Flags: []cli.Flag{
					&cli.StringSliceFlag{Name: "allow", Sources: cli.EnvVars("DEMO_ALLOW"), Usage: `extra sources, "CIDR" or address`},
					&cli.DurationFlag{Name: "timeout", Value: 0, HideDefault: true, Usage: "give up after this long"},
				},
			},
			{
				Name:    "status",
				Aliases: []string{"st"},
				Usage:   "say whether the host is guarded",
				Commands: []*cli.Command{
					{Name: "json", Usage: "the same, as JSON"},
				},
			},
			{Name: "man", Hidden: true, Usage: "never shown"},
			{Name: "help", Usage: "skipped"},
		},
	}
}

func render(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	err := Write(&b, tree(), Page{
		Section: 1, Date: "2026-12-02", Source: "demo 1.2.3", Manual: "User Commands",
		Extra: []Section{
			{Title: "Files", Body: "/etc/default/demo\n\nSettings."},
			{Title: "See also", Body: "nft(8)"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestWriteGolden(t *testing.T) {
	got := render(t)
	golden := filepath.Join("testdata", "demo.1.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("man page (-want +got):\n%s", diff)
	}
}

func TestWriteSkipsHiddenAndHelp(t *testing.T) {
	got := render(t)
	for _, s := range []string{"never shown", "secret", "skipped", "demo man"} {
		if strings.Contains(got, s) {
			t.Errorf("man page shows %q, which is hidden", s)
		}
	}
	// No line may start with a control character that came from the text.
	for _, l := range strings.Split(got, "\n") {
		if strings.HasPrefix(l, ".starts") {
			t.Errorf("unescaped leading dot: %q", l)
		}
	}
}

// TestWriteFormatsCleanly runs the page through groff with every warning
// on: a roff mistake (an unknown macro, a bad escape) is a warning.
func TestWriteFormatsCleanly(t *testing.T) {
	if _, err := exec.LookPath("groff"); err != nil {
		t.Skip("skipped: groff is not installed")
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(render(t))
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("groff: %v\n%s", err, out)
	}
}

// TestDefaultsAreDeclaredNotParsed: rendering from inside a running command
// (as `cfguard man` does) shows the declared defaults, not what the
// environment of the build happened to set.
func TestDefaultsAreDeclaredNotParsed(t *testing.T) {
	t.Setenv("DEMO_PORTS", "22")
	root := tree()
	var b bytes.Buffer
	root.Commands[2].Action = func(ctx context.Context, c *cli.Command) error {
		return Write(&b, c.Root(), Page{Section: 1})
	}
	root.Commands[2].Hidden = true
	if err := root.Run(context.Background(), []string{"demo", "man"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `Default: "80,443".`) || strings.Contains(b.String(), "Default: 22") {
		t.Errorf("defaults taken from the environment:\n%s", b.String())
	}
}

// FuzzEsc: escaped text never starts a roff request, holds no raw control
// character and no non-ASCII byte, whatever the usage strings say.
func FuzzEsc(f *testing.F) {
	for _, s := range []string{"plain", ".TH x", "'x", "a\\b", "tab\there", "nl\nhere", "\x00\x1b[31m", "…", "--flag"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := esc(s)
		if strings.HasPrefix(e, ".") || strings.HasPrefix(e, "'") {
			t.Fatalf("esc(%q) = %q starts a request", s, e)
		}
		for i := 0; i < len(e); i++ {
			if c := e[i]; (c < 0x20 && c != '\t') || c >= 0x7f {
				t.Fatalf("esc(%q) = %q holds byte %#x", s, e, c)
			}
		}
	})
}
