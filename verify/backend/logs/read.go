package logs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Limits of reading.
const (
	// MaxTail is how much of the end of a log file is read.
	MaxTail = 32 << 20
	// JournalTimeout bounds journalctl.
	JournalTimeout = 10 * time.Second
	maxLine        = 1 << 20
)

// ReadFile classifies the lines of a log file written at or after since.
// Lines without a time stamp are kept (they cannot be placed). When the
// file starts inside the window, its rotated predecessor (FILE.1) is read
// too.
func ReadFile(ctx context.Context, src Source, path string, since time.Time) ([]Entry, error) {
	entries, first, err := readOne(ctx, src, path, since)
	if err != nil {
		return nil, err
	}
	if !first.IsZero() && first.After(since) {
		if older, _, err := readOne(ctx, src, path+".1", since); err == nil {
			entries = append(older, entries...)
		}
	}
	return entries, nil
}

func readOne(ctx context.Context, src Source, path string, since time.Time) ([]Entry, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	if st.Size() > MaxTail {
		if _, err := f.Seek(st.Size()-MaxTail, io.SeekStart); err != nil {
			return nil, time.Time{}, err
		}
	}
	entries, first, err := Scan(ctx, src, f, since)
	if st.Size() > MaxTail {
		first = time.Time{} // the start of the file was not read
	}
	return entries, first, err
}

// Scan classifies the lines read from r written at or after since, and
// returns the time of the first time-stamped line.
func Scan(ctx context.Context, src Source, r io.Reader, since time.Time) ([]Entry, time.Time, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	var out []Entry
	var first time.Time
	n := 0
	for sc.Scan() {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return out, first, ctx.Err()
		}
		line := sc.Text()
		e, ok := Classify(src, line)
		if first.IsZero() {
			if t := lineTime(src, line); !t.IsZero() {
				first = t
			}
		}
		if !ok {
			continue
		}
		if !e.Time.IsZero() && e.Time.Before(since) {
			continue
		}
		out = append(out, e)
	}
	MarkThreads(out)
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		return out, first, err
	}
	return out, first, nil
}

func lineTime(src Source, line string) time.Time {
	switch src {
	case Nginx:
		if len(line) >= 19 {
			t, _ := time.ParseInLocation("2006/01/02 15:04:05", line[:19], time.Local)
			return t
		}
	case FPM:
		if m := fpmHead.FindStringSubmatch(line); m != nil {
			t, _ := time.ParseInLocation("02-Jan-2006 15:04:05", m[1], time.Local)
			return t
		}
	case Apache:
		if m := apacheHead.FindStringSubmatch(line); m != nil {
			for _, layout := range []string{"Mon Jan 02 15:04:05.000000 2006", "Mon Jan 02 15:04:05 2006"} {
				if t, err := time.ParseInLocation(layout, m[1], time.Local); err == nil {
					return t
				}
			}
		}
	}
	return time.Time{}
}

// ErrNoKernelLog is returned when neither the journal nor /dev/kmsg can be
// read.
var ErrNoKernelLog = errors.New("no kernel log readable (journalctl -k, /dev/kmsg)")

// ReadKernel classifies the kernel messages of the window: through
// `journalctl -k -o json` when a journal exists, else /dev/kmsg. The string
// names the source read.
func ReadKernel(ctx context.Context, since time.Time) ([]Entry, string, error) {
	if hasJournal() {
		if es, err := readJournal(ctx, since); err == nil {
			return es, "journalctl -k", nil
		}
	}
	es, err := readKmsg(ctx, "/dev/kmsg", since)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrNoKernelLog, err)
	}
	return es, "/dev/kmsg", nil
}

func hasJournal() bool {
	if _, err := exec.LookPath("journalctl"); err != nil {
		return false
	}
	for _, d := range []string{"/run/log/journal", "/var/log/journal"} {
		if ents, err := os.ReadDir(d); err == nil && len(ents) > 0 {
			return true
		}
	}
	return false
}

func readJournal(ctx context.Context, since time.Time) ([]Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, JournalTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "journalctl", "-k", "-o", "json", "--no-pager", "-q",
		"--since", since.Format("2006-01-02 15:04:05"))
	out, err := cmd.Output()
	if err != nil {
		return nil, err
	}
	return ParseJournal(out), nil
}

// ParseJournal classifies `journalctl -o json` output (one object a line).
func ParseJournal(out []byte) []Entry {
	var es []Entry
	for _, line := range bytes.Split(out, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec struct {
			Message  any    `json:"MESSAGE"`
			Realtime string `json:"__REALTIME_TIMESTAMP"`
		}
		if json.Unmarshal(line, &rec) != nil {
			continue
		}
		msg, ok := rec.Message.(string)
		if !ok {
			continue // binary messages come as byte arrays
		}
		var t time.Time
		if us, err := strconv.ParseInt(rec.Realtime, 10, 64); err == nil {
			t = time.UnixMicro(us)
		}
		if e, ok := classifyKernel(msg, t); ok {
			es = append(es, e)
		}
	}
	return es
}

// readKmsg reads the kernel ring buffer without blocking. Records are
// "prio,seq,usec-since-boot,flags;message".
func readKmsg(ctx context.Context, path string, since time.Time) ([]Entry, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	boot := bootTime()
	buf := make([]byte, 8192)
	var es []Entry
	for n := 0; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return es, ctx.Err()
		}
		k, err := unix.Read(fd, buf)
		if err == unix.EPIPE { // overwritten records: go on
			continue
		}
		if err == unix.EAGAIN || k <= 0 {
			break
		}
		if err != nil {
			return es, err
		}
		if e, ok := ParseKmsg(string(buf[:k]), boot); ok && !e.Time.Before(since) {
			es = append(es, e)
		}
	}
	return es, nil
}

// ParseKmsg classifies one /dev/kmsg record; boot is the boot time.
func ParseKmsg(rec string, boot time.Time) (Entry, bool) {
	head, msg, ok := strings.Cut(rec, ";")
	if !ok {
		return Entry{}, false
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	var t time.Time
	if f := strings.Split(head, ","); len(f) >= 3 {
		if us, err := strconv.ParseInt(f[2], 10, 64); err == nil && !boot.IsZero() {
			t = boot.Add(time.Duration(us) * time.Microsecond)
		}
	}
	return classifyKernel(msg, t)
}

func bootTime() time.Time {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return time.Time{}
	}
	return time.Now().Add(-time.Duration(ts.Nano()))
}

// Count is the tally of one kind of message about one upstream / pool /
// victim.
type Count struct {
	Source   Source
	Kind     Kind
	Upstream string
	Pool     string
	Victim   string
	N        int
	First    time.Time
	Last     time.Time
	Latest   Entry
}

// Tally groups entries by source, kind and subject; the result is ordered
// by count, highest first.
func Tally(es []Entry) []Count {
	type key struct {
		src                    Source
		kind                   Kind
		upstream, pool, victim string
	}
	m := map[key]*Count{}
	var order []key
	for _, e := range es {
		k := key{e.Source, e.Kind, e.Upstream, e.Pool, e.Victim}
		c, ok := m[k]
		if !ok {
			c = &Count{Source: e.Source, Kind: e.Kind, Upstream: e.Upstream, Pool: e.Pool, Victim: e.Victim, First: e.Time}
			m[k] = c
			order = append(order, k)
		}
		c.N++
		if !e.Time.Before(c.Last) {
			c.Last = e.Time
			c.Latest = e
		}
	}
	out := make([]Count, 0, len(order))
	for _, k := range order {
		out = append(out, *m[k])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].N > out[j].N })
	return out
}
