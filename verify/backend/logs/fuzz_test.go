package logs

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"
)

// FuzzClassify: no line of any source panics the classifier, and a
// classified line keeps its source and text and names a kind. The journal
// and /dev/kmsg readers get the same bytes.
func FuzzClassify(f *testing.F) {
	if file, err := os.Open("testdata/lines.txt"); err == nil {
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			f.Add(sc.Text())
		}
		file.Close()
	}
	for _, s := range []string{"", "upstream", "AH01114: ", "[pool www] ", "6,123,456,-;Out of memory: Killed process 1 (php-fpm8.2)",
		`{"MESSAGE":"x invoked oom-killer","__REALTIME_TIMESTAMP":"1"}`, `{"MESSAGE":[1,2]}`} {
		f.Add(s)
	}
	boot := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, line string) {
		for _, src := range []Source{Nginx, Apache, FPM, Kernel} {
			if l := Line(src, line); l.Source != src || l.Line != line {
				t.Fatalf("Line(%s, %q) = %+v: source or line lost", src, line, l)
			}
			e, ok := Classify(src, line)
			if !ok {
				continue
			}
			if e.Source != src || e.Line != line || e.Kind == "" {
				t.Fatalf("Classify(%s, %q) = %+v: source, line or kind lost", src, line, e)
			}
			_ = NormalizeUpstream(e.Upstream)
		}
		ParseKmsg(line, boot)
		es := ParseJournal([]byte(line))
		Tally(es)
		if _, _, err := Scan(t.Context(), Nginx, strings.NewReader(line), time.Time{}); err != nil {
			t.Fatalf("Scan: %v", err)
		}
	})
}
