// Package logs reads the recent window of nginx, Apache, PHP-FPM and kernel
// logs and classifies the lines that explain a 502, 503 or 504: each known
// message becomes an Entry naming the upstream (or pool, or OOM victim) it
// is about, and Tally counts them, keeping the latest line.
package logs

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Source is the program that wrote a line.
type Source string

const (
	Nginx  Source = "nginx"
	Apache Source = "apache"
	FPM    Source = "php-fpm"
	Kernel Source = "kernel"
)

// Kind is what a line means.
type Kind string

const (
	Refused           Kind = "connection refused"           // nothing listens at the backend address (111)
	NoSuchFile        Kind = "no such file"                 // the unix socket does not exist (2)
	PermissionDenied  Kind = "permission denied"            // socket owner/mode vs the worker user (13)
	ListenQueueFull   Kind = "listen queue full"            // EAGAIN on a unix socket (11)
	TimedOut          Kind = "upstream timed out"           // slower than *_read_timeout (110) → 504
	ConnectTimedOut   Kind = "connect timed out"            // no answer to connect (110 while connecting)
	PrematureClose    Kind = "upstream prematurely closed"  // the worker died mid-request
	Reset             Kind = "connection reset"             // 104
	TooBigHeader      Kind = "too big header"               // headers over *_buffer_size
	NoLiveUpstreams   Kind = "no live upstreams"            // every server of an upstream{} marked failed
	WorkerConnections Kind = "worker_connections exhausted" // nginx itself saturated
	TooManyFiles      Kind = "too many open files"          // 24
	ConnectFailed     Kind = "backend connect failed"       // Apache AH01114 / AH01079 (503)
	WorkerDisabled    Kind = "backend worker disabled"      // Apache AH00959
	ReadFailed        Kind = "error reading from backend"   // Apache AH01102 / AH00898
	DispatchFailed    Kind = "error dispatching request"    // Apache AH01075
	MaxChildren       Kind = "pm.max_children reached"      // FPM pool saturated
	PoolBusy          Kind = "pool busy"                    // FPM "seems busy"
	ExecTimeout       Kind = "execution timed out"          // request_terminate_timeout hit
	ChildKilled       Kind = "child killed (SIGKILL)"       // often the OOM killer
	ChildCrashed      Kind = "child crashed (SIGSEGV)"      //
	BindFailed        Kind = "cannot bind listen socket"    // FPM could not start a pool
	OOMInvoked        Kind = "oom-killer invoked"           //
	OOMKill           Kind = "killed by the OOM killer"     //
)

// Entry is one classified line.
type Entry struct {
	Source   Source
	Kind     Kind
	Time     time.Time // zero when the line carries none
	Upstream string    // "unix:/run/php/php8.2-fpm.sock", "127.0.0.1:9000", or an upstream{} name
	Pool     string    // FPM pool
	Victim   string    // OOM: the killed process name
	Host     string    // nginx: the request's Host
	// Probe is the probemark id of verify's own request the line is about,
	// "" for a visitor's (mark.go).
	Probe string
	// Client and Thread are Apache's "[client 127.0.0.1:38622]" and
	// "[pid 27258:tid 27261]"; "" for other sources or when not logged.
	Client, Thread string
	Message        string // the line without its time stamp and request details
	Line           string
}

var (
	nginxTime   = regexp.MustCompile(`^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)$`)
	nginxUp     = regexp.MustCompile(`upstream: "([^"]*)"`)
	nginxHost   = regexp.MustCompile(`host: "([^"]*)"`)
	nginxUnix   = regexp.MustCompile(`connect\(\) to (unix:[^ ]+?) failed`)
	nginxTCP    = regexp.MustCompile(`connect\(\) to ([^ ]+) failed`)
	nginxErrno  = regexp.MustCompile(`\((\d+): [^)]*\)`)
	apacheHead  = regexp.MustCompile(`^\[(\w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)? \d{4})\] \[([^\]]*)\] (?:\[pid [^\]]*\] )?(?:\[client [^\]]*\] )?(.*)$`)
	apacheErrno = regexp.MustCompile(`^\((\d+)\)[^:]*: `)
	apacheAH    = regexp.MustCompile(`AH(\d{5}): `)
	apacheUDS   = regexp.MustCompile(`Unix domain socket (\S+)`)
	apacheAddr  = regexp.MustCompile(`(?:connect to|for) \(?([^ )]+:\d+)\)?`)
	apacheHost  = regexp.MustCompile(`backend: (\S+)`)
	fpmHead     = regexp.MustCompile(`^\[(\d{2}-\w{3}-\d{4} \d{2}:\d{2}:\d{2})(?:\.\d+)?\] (\w+): (.*)$`)
	fpmPool     = regexp.MustCompile(`\[pool ([^\]]+)\]`)
	oomVictim   = regexp.MustCompile(`Killed process \d+ \(([^)]+)\)`)
	oomInvoker  = regexp.MustCompile(`^(\S+) invoked oom-killer`)
)

// Classify classifies one line of the given source. ok is false for lines
// that do not explain a 5xx.
func Classify(src Source, line string) (Entry, bool) {
	// Most lines are about something else: skip them before any regexp.
	switch src {
	case Nginx:
		if !strings.Contains(line, "upstream") && !strings.Contains(line, "worker_connections") && !strings.Contains(line, "(24: ") {
			return Entry{}, false
		}
	case Apache:
		if !strings.Contains(line, "AH0") {
			return Entry{}, false
		}
	case FPM:
		if !strings.Contains(line, "[pool ") && !strings.Contains(line, "unable to bind") {
			return Entry{}, false
		}
	}
	switch src {
	case Nginx:
		return marked(classifyNginx(line))
	case Apache:
		return marked(classifyApache(line))
	case FPM:
		return classifyFPM(line)
	case Kernel:
		return classifyKernel(line, time.Time{})
	}
	return Entry{}, false
}

func classifyNginx(line string) (Entry, bool) {
	e := Entry{Source: Nginx, Line: line}
	msg := line
	if m := nginxTime.FindStringSubmatch(line); m != nil {
		if t, err := time.ParseInLocation("2006/01/02 15:04:05", m[1], time.Local); err == nil {
			e.Time = t
		}
		msg = m[3]
	}
	core := msg
	if i := strings.Index(core, ", client: "); i >= 0 {
		core = core[:i]
	}
	e.Message = core
	errno := 0
	if m := nginxErrno.FindStringSubmatch(core); m != nil {
		errno, _ = strconv.Atoi(m[1])
	}
	switch {
	case strings.Contains(core, "worker_connections are not enough"):
		e.Kind = WorkerConnections
	case errno == 24:
		e.Kind = TooManyFiles
	case strings.Contains(core, "no live upstreams"):
		e.Kind = NoLiveUpstreams
	case strings.Contains(core, "upstream sent too big header"):
		e.Kind = TooBigHeader
	case strings.Contains(core, "upstream prematurely closed connection"):
		e.Kind = PrematureClose
	case strings.Contains(core, "upstream timed out"):
		e.Kind = TimedOut
		if strings.Contains(core, "while connecting to upstream") {
			e.Kind = ConnectTimedOut
		}
	case strings.Contains(core, "connect()") && strings.Contains(core, "failed"):
		switch errno {
		case 111:
			e.Kind = Refused
		case 2:
			e.Kind = NoSuchFile
		case 13:
			e.Kind = PermissionDenied
		case 11:
			e.Kind = ListenQueueFull
		case 110:
			e.Kind = ConnectTimedOut
		case 104:
			e.Kind = Reset
		default:
			return Entry{}, false
		}
	case errno == 104 && strings.Contains(core, "upstream"):
		e.Kind = Reset
	default:
		return Entry{}, false
	}
	if m := nginxUp.FindStringSubmatch(msg); m != nil {
		e.Upstream = NormalizeUpstream(m[1])
	}
	if e.Upstream == "" || e.Kind == NoSuchFile || e.Kind == PermissionDenied || e.Kind == ListenQueueFull {
		if m := nginxUnix.FindStringSubmatch(core); m != nil {
			e.Upstream = m[1]
		} else if m := nginxTCP.FindStringSubmatch(core); m != nil && e.Upstream == "" {
			e.Upstream = m[1]
		}
	}
	if m := nginxHost.FindStringSubmatch(msg); m != nil {
		e.Host = m[1]
	}
	return e, true
}

// NormalizeUpstream turns nginx's upstream field ("fastcgi://unix:/run/x.sock:",
// "http://127.0.0.1:3000/path") into "unix:/run/x.sock" or "127.0.0.1:3000".
func NormalizeUpstream(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if strings.HasPrefix(u, "unix:") {
		p := strings.TrimPrefix(u, "unix:")
		if i := strings.IndexByte(p, ':'); i >= 0 {
			p = p[:i]
		}
		return "unix:" + p
	}
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	return u
}

func classifyApache(line string) (Entry, bool) {
	e := Entry{Source: Apache, Line: line}
	msg := line
	if m := apacheHead.FindStringSubmatch(line); m != nil {
		for _, layout := range []string{"Mon Jan 02 15:04:05.000000 2006", "Mon Jan 02 15:04:05 2006"} {
			if t, err := time.ParseInLocation(layout, m[1], time.Local); err == nil {
				e.Time = t
				break
			}
		}
		msg = m[3]
	}
	e.Message = msg
	m := apacheAH.FindStringSubmatch(msg)
	if m == nil {
		return Entry{}, false
	}
	errno := 0
	if em := apacheErrno.FindStringSubmatch(msg); em != nil {
		errno, _ = strconv.Atoi(em[1])
	}
	byErrno := func(def Kind) Kind {
		switch errno {
		case 111:
			return Refused
		case 2:
			return NoSuchFile
		case 13:
			return PermissionDenied
		case 11:
			return ListenQueueFull
		case 110, 70007:
			return TimedOut
		case 104:
			return Reset
		}
		return def
	}
	switch m[1] {
	case "00957", "02454":
		e.Kind = byErrno(ConnectFailed)
	case "01114", "01079":
		e.Kind = ConnectFailed
	case "00959":
		e.Kind = WorkerDisabled
	case "01102", "00898":
		e.Kind = byErrno(ReadFailed)
	case "01075":
		e.Kind = byErrno(DispatchFailed)
	default:
		return Entry{}, false
	}
	if u := apacheUDS.FindStringSubmatch(msg); u != nil {
		e.Upstream = "unix:" + u[1]
	} else if a := apacheAddr.FindStringSubmatch(msg); a != nil {
		e.Upstream = a[1]
	} else if h := apacheHost.FindStringSubmatch(msg); h != nil {
		e.Upstream = strings.TrimSuffix(h[1], ":0")
	}
	return e, true
}

func classifyFPM(line string) (Entry, bool) {
	e := Entry{Source: FPM, Line: line}
	msg := line
	if m := fpmHead.FindStringSubmatch(line); m != nil {
		if t, err := time.ParseInLocation("02-Jan-2006 15:04:05", m[1], time.Local); err == nil {
			e.Time = t
		}
		msg = m[3]
	}
	e.Message = msg
	if m := fpmPool.FindStringSubmatch(msg); m != nil {
		e.Pool = m[1]
	}
	switch {
	case strings.Contains(msg, "server reached pm.max_children setting") ||
		strings.Contains(msg, "server reached max_children setting"):
		e.Kind = MaxChildren
	case strings.Contains(msg, "seems busy"):
		e.Kind = PoolBusy
	case strings.Contains(msg, "execution timed out"):
		e.Kind = ExecTimeout
	case strings.Contains(msg, "exited on signal 9"):
		e.Kind = ChildKilled
	case strings.Contains(msg, "exited on signal 11"):
		e.Kind = ChildCrashed
	case strings.Contains(msg, "unable to bind listening socket"):
		e.Kind = BindFailed
	default:
		return Entry{}, false
	}
	return e, true
}

// classifyKernel classifies a kernel message (without the kmsg or
// journal framing); t is its time.
func classifyKernel(msg string, t time.Time) (Entry, bool) {
	e := Entry{Source: Kernel, Line: msg, Message: msg, Time: t}
	switch {
	case strings.Contains(msg, "invoked oom-killer"):
		e.Kind = OOMInvoked
		if m := oomInvoker.FindStringSubmatch(strings.TrimSpace(msg)); m != nil {
			e.Victim = m[1]
		}
	case strings.Contains(msg, "Killed process"):
		e.Kind = OOMKill
		if m := oomVictim.FindStringSubmatch(msg); m != nil {
			e.Victim = m[1]
		}
	default:
		return Entry{}, false
	}
	return e, true
}
