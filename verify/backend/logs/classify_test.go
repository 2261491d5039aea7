package logs

import (
	"bufio"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type fixture struct {
	src                 Source
	kind, subject, line string
}

func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	f, err := os.Open("testdata/lines.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fixture
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") || sc.Text() == "" {
			continue
		}
		p := strings.SplitN(sc.Text(), "|", 4)
		if len(p) != 4 {
			t.Fatalf("bad fixture %q", sc.Text())
		}
		out = append(out, fixture{Source(p[0]), p[1], p[2], p[3]})
	}
	return out
}

func TestClassify(t *testing.T) {
	for _, fx := range loadFixtures(t) {
		t.Run(string(fx.src)+"/"+fx.kind, func(t *testing.T) {
			type got struct{ Kind, Subject string }
			want := got{fx.kind, fx.subject}
			e, ok := Classify(fx.src, fx.line)
			g := got{"-", ""}
			if ok {
				g = got{string(e.Kind), e.Upstream + e.Pool + e.Victim}
				if fx.src == FPM && e.Kind == BindFailed {
					g.Subject = ""
				}
				if fx.src == Kernel {
					g.Subject = e.Victim
				}
				if fx.src == Apache && (e.Kind == ReadFailed || e.Kind == Reset || e.Kind == TimedOut) {
					g.Subject = ""
				}
			}
			if d := cmp.Diff(want, g); d != "" {
				t.Errorf("%s\n(-want +got)\n%s", fx.line, d)
			}
			if ok && fx.src != Kernel && e.Time.IsZero() {
				t.Errorf("no time read from %q", fx.line)
			}
		})
	}
}

func TestScanWindowAndTally(t *testing.T) {
	text := strings.Join([]string{
		`2026/11/23 20:00:00 [crit] 1#1: *1 connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: a, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "a"`,
		`2026/11/23 20:10:00 [crit] 1#1: *2 connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: a, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "a"`,
		`2026/11/23 20:11:00 [crit] 1#1: *3 connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: a, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "a"`,
		`2026/11/23 20:12:00 [error] 1#1: *4 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: a, request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:3000/", host: "a"`,
	}, "\n")
	since := time.Date(2026, 11, 23, 20, 5, 0, 0, time.Local)
	es, first, err := Scan(context.Background(), Nginx, strings.NewReader(text), since)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 23, 20, 0, 0, 0, time.Local); !first.Equal(want) {
		t.Errorf("first = %v, want %v", first, want)
	}
	type row struct {
		Kind     Kind
		Upstream string
		N        int
		Last     string
	}
	var got []row
	for _, c := range Tally(es) {
		got = append(got, row{c.Kind, c.Upstream, c.N, c.Last.Format("15:04")})
	}
	want := []row{{NoSuchFile, "unix:/run/php/php8.2-fpm.sock", 2, "20:11"}, {Refused, "127.0.0.1:3000", 1, "20:12"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
}

func TestParseKmsgAndJournal(t *testing.T) {
	boot := time.Unix(1_000_000, 0)
	e, ok := ParseKmsg("3,1234,5000000,-;Out of memory: Killed process 4242 (php-fpm8.2) total-vm:812344kB\n SUBSYSTEM=x", boot)
	if !ok || e.Victim != "php-fpm8.2" || !e.Time.Equal(boot.Add(5*time.Second)) {
		t.Errorf("ParseKmsg = %+v, %v", e, ok)
	}
	j := []byte(`{"MESSAGE":"Out of memory: Killed process 977 (nginx) total-vm:1kB","__REALTIME_TIMESTAMP":"1700000000000000"}
{"MESSAGE":[1,2,3],"__REALTIME_TIMESTAMP":"1700000000000001"}
{"MESSAGE":"usb 1-1: new device","__REALTIME_TIMESTAMP":"1700000000000002"}
`)
	es := ParseJournal(j)
	if len(es) != 1 || es[0].Victim != "nginx" || es[0].Time.Unix() != 1700000000 {
		t.Errorf("ParseJournal = %+v", es)
	}
}

func BenchmarkClassify(b *testing.B) {
	fx := loadFixtures(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := fx[i%len(fx)]
		Classify(f.src, f.line)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
