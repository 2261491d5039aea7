package backend

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cfguard/cfguard/verify/backend/fastcgi"
	"github.com/cfguard/cfguard/verify/probemark"
)

// probeKind is what a probe of one backend address found.
type probeKind int

const (
	probeOK          probeKind = iota
	probeNoSocket              // ENOENT
	probeDenied                // the worker user may not connect (mode / owner / directories)
	probeStale                 // ECONNREFUSED on a unix socket
	probeQueueFull             // EAGAIN on a unix socket
	probeRefused               // TCP refused
	probeConnTimeout           // TCP connect timed out
	probeReset                 // reset / closed before an answer
	probeNoAnswer              // connected, no answer within the probe timeout
	probeBadAnswer             // answered garbage / a FastCGI protocol error
	probeError                 // anything else
)

// probeResult is the result of probing one address.
type probeResult struct {
	kind     probeKind
	err      error
	detail   string        // for probeDenied: owner, group and mode against the user
	took     time.Duration // to the answer, when probeOK
	status   int           // FastCGI / HTTP status of the answer
	answered string        // what answered ("pong", "404 from php-fpm")
	fpm      *fpmStatus    // from pm.status_path
}

// fpmStatus is what PHP-FPM's status page says.
type fpmStatus struct {
	listenQueue, maxListenQueue, maxChildrenReached, active, total, slow int
	idle, listenQueueLen                                                 int
}

// cred is the user a web server's workers run as.
type cred struct {
	name string
	uid  uint32
	gids []uint32 // primary first
}

func (c cred) String() string {
	if c.name != "" {
		return fmt.Sprintf("%s (uid %d)", c.name, c.uid)
	}
	return fmt.Sprintf("uid %d", c.uid)
}

func (c cred) inGroup(g uint32) bool {
	for _, x := range c.gids {
		if x == g {
			return true
		}
	}
	return false
}

// checkAccess tells whether c may connect to the unix socket at path:
// search permission on every directory and write permission on the socket.
// "" means allowed.
func checkAccess(path string, c cred) string {
	if c.uid == 0 {
		return ""
	}
	dir := filepath.Dir(path)
	for d := dir; ; d = filepath.Dir(d) {
		if st, err := statT(d); err == nil && !allowed(st, c, 1) {
			return fmt.Sprintf("the directory %s (%s, mode %04o) does not let %s through", d, ownerOf(st), st.Mode&0o7777, c)
		}
		if d == "/" || d == "." {
			break
		}
	}
	st, err := statT(path)
	if err != nil {
		return ""
	}
	if !allowed(st, c, 2) {
		return fmt.Sprintf("%s is owned by %s with mode %04o, which does not let %s write to it", path, ownerOf(st), st.Mode&0o7777, c)
	}
	return ""
}

func statT(p string) (*syscall.Stat_t, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// allowed applies the owner / group / other bits as the kernel does (the
// first class that matches decides); bit 1 = x, 2 = w, 4 = r.
func allowed(st *syscall.Stat_t, c cred, bit uint32) bool {
	mode := st.Mode
	switch {
	case st.Uid == c.uid:
		return (mode>>6)&bit != 0
	case c.inGroup(st.Gid):
		return (mode>>3)&bit != 0
	default:
		return mode&bit != 0
	}
}

func ownerOf(st *syscall.Stat_t) string {
	return userName(st.Uid) + ":" + groupName(st.Gid)
}

// dialUnix connects to a unix socket and classifies the failure.
func dialUnix(ctx context.Context, path string, timeout time.Duration) (net.Conn, probeResult) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, probeResult{kind: probeNoSocket, err: err}
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, classifyDial(err, true)
	}
	return conn, probeResult{kind: probeOK}
}

func dialTCP(ctx context.Context, addr string, timeout time.Duration) (net.Conn, probeResult) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, classifyDial(err, false)
	}
	return conn, probeResult{kind: probeOK}
}

func classifyDial(err error, unixSock bool) probeResult {
	r := probeResult{err: err, kind: probeError}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ENOENT):
		r.kind = probeNoSocket
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		r.kind = probeDenied
	case errors.Is(err, syscall.ECONNREFUSED):
		r.kind = probeRefused
		if unixSock {
			r.kind = probeStale
		}
	case errors.Is(err, syscall.EAGAIN):
		r.kind = probeQueueFull
	case errors.Is(err, syscall.ECONNRESET):
		r.kind = probeReset
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		r.kind = probeConnTimeout
	}
	return r
}

func classifyIO(err error) probeResult {
	r := probeResult{err: err, kind: probeError}
	var ne net.Error
	switch {
	case errors.Is(err, fastcgi.ErrNoEnd), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		r.kind = probeReset
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		r.kind = probeNoAnswer
	}
	return r
}

// probeFastCGI asks the pool for its ping page (or a script that does not
// exist, which a live PHP-FPM answers at once with 404) over conn, then its
// status page when it has one.
func probeFastCGI(ctx context.Context, dial func() (net.Conn, probeResult), pingPath, pingResponse, statusPath, root, host string, timeout time.Duration) probeResult {
	conn, r := dial()
	if r.kind != probeOK {
		return r
	}
	script := pingPath
	if script == "" {
		var b [6]byte
		rand.Read(b[:])
		script = "/cfguard-probe-" + hex.EncodeToString(b[:]) + ".php"
	}
	if root == "" || strings.Contains(root, "$") {
		root = "/nonexistent"
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	resp, err := fastcgi.Do(pctx, conn, fastcgi.Params(script, root, host))
	took := time.Since(start)
	// Close before asking for the status page: after answering, a PHP-FPM
	// child reads until the client closes (fcgi_close drains the socket),
	// so an open connection keeps it busy — in a one-child pool the status
	// request would wait for the probe's own timeout.
	conn.Close()
	if err != nil {
		r := classifyIO(err)
		if resp == nil && r.kind == probeError {
			r.kind = probeBadAnswer
		}
		return r
	}
	r = probeResult{kind: probeOK, took: took, status: resp.Status}
	if pingPath != "" {
		body := strings.TrimSpace(string(resp.Body))
		if resp.Status == http.StatusOK && (pingResponse == "" || body == pingResponse) {
			r.answered = fmt.Sprintf("%q from %s", body, pingPath)
		} else {
			r.answered = fmt.Sprintf("%d from %s", resp.Status, pingPath)
		}
	} else {
		r.answered = fmt.Sprintf("%d for a script that does not exist", resp.Status)
	}
	if statusPath != "" {
		if c2, r2 := dial(); r2.kind == probeOK {
			defer c2.Close()
			sctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if sr, err := fastcgi.Do(sctx, c2, fastcgi.Params(statusPath, root, host)); err == nil && sr.Status == http.StatusOK {
				r.fpm = parseFPMStatus(string(sr.Body))
			}
		}
	}
	return r
}

func parseFPMStatus(body string) *fpmStatus {
	s := &fpmStatus{}
	for _, line := range strings.Split(body, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		switch strings.TrimSpace(k) {
		case "listen queue":
			s.listenQueue = n
		case "max listen queue":
			s.maxListenQueue = n
		case "max children reached":
			s.maxChildrenReached = n
		case "active processes":
			s.active = n
		case "idle processes":
			s.idle = n
		case "listen queue len":
			s.listenQueueLen = n
		case "total processes":
			s.total = n
		case "slow requests":
			s.slow = n
		}
	}
	return s
}

// probeHTTP sends GET / with the visitor's Host over a connection made by
// dial (on the calling goroutine: probes made inside a network namespace
// stay there).
func probeHTTP(ctx context.Context, dial func() (net.Conn, probeResult), scheme, host string, timeout time.Duration) probeResult {
	if !validHost(host) {
		// The Host comes from the API (a record's name, an Origin Rule's
		// host_header): written as it is, a CR or LF would add headers.
		return probeResult{kind: probeError, err: fmt.Errorf("verify sent no GET / with the Host %q, which no HTTP request may carry", host)}
	}
	conn, r := dial()
	if r.kind != probeOK {
		return r
	}
	defer conn.Close()
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if dl, ok := pctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if scheme == "https" || scheme == "grpcs" {
		tc := tls.Client(conn, &tls.Config{ServerName: host, InsecureSkipVerify: true}) // nginx does not verify by default
		if err := tc.HandshakeContext(pctx); err != nil {
			return probeResult{kind: probeBadAnswer, err: fmt.Errorf("TLS handshake: %w", err)}
		}
		conn = tc
	}
	start := time.Now()
	// Marked as verify's (probemark): a backend that is itself a web
	// server whose log is read (nginx in front of Apache) keeps it out of
	// the visitors' counts.
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: cfguard\r\nReferer: " + probemark.Referer(probemark.New()) + "\r\nConnection: close\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return classifyIO(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		r := classifyIO(err)
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			r.kind = probeReset
		} else if r.kind == probeError {
			r.kind = probeBadAnswer
		}
		return r
	}
	resp.Body.Close()
	return probeResult{kind: probeOK, took: time.Since(start), status: resp.StatusCode, answered: resp.Status}
}

// validHost reports whether h can be sent as a Host header as it is: 1 to
// 255 bytes of letters, digits and - . _ : [ ] (a name, an address, a
// port), nothing that could end the header line.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._:[]", c) >= 0) {
			return false
		}
	}
	return true
}
