// Package fastcgi is a minimal FastCGI client: one request per connection
// (BEGIN_REQUEST, PARAMS, an empty STDIN), reading STDOUT, STDERR and
// END_REQUEST — enough to ask PHP-FPM for its ping page or its status page.
package fastcgi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	version1 = 1

	typeBeginRequest = 1
	typeEndRequest   = 3
	typeParams       = 4
	typeStdin        = 5
	typeStdout       = 6
	typeStderr       = 7

	roleResponder = 1
	requestID     = 1

	maxRecord = 65535
	// MaxOutput bounds what is kept of STDOUT and STDERR.
	MaxOutput = 1 << 20
)

// Response is what the application answered.
type Response struct {
	Status         int // from the Status header, 200 when absent
	Header         http.Header
	HeaderBytes    int // size of the response header block
	Body           []byte
	Stderr         string
	AppStatus      uint32
	ProtocolStatus uint8
}

// ErrNoEnd is returned when the connection closed before END_REQUEST.
var ErrNoEnd = errors.New("connection closed before the end of the response")

// Do sends one request over conn and reads the answer. The context's
// deadline applies to the whole exchange. conn is not closed.
func Do(ctx context.Context, conn net.Conn, params map[string]string) (*Response, error) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	defer stop()

	var req bytes.Buffer
	writeRecord(&req, typeBeginRequest, []byte{0, roleResponder, 0, 0, 0, 0, 0, 0})
	var p bytes.Buffer
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		writeLen(&p, len(k))
		writeLen(&p, len(params[k]))
		p.WriteString(k)
		p.WriteString(params[k])
	}
	for b := p.Bytes(); len(b) > 0; {
		n := min(len(b), maxRecord)
		writeRecord(&req, typeParams, b[:n])
		b = b[n:]
	}
	writeRecord(&req, typeParams, nil)
	writeRecord(&req, typeStdin, nil)
	if _, err := conn.Write(req.Bytes()); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("sending the request: %w", err))
	}

	var stdout, stderr bytes.Buffer
	r := bufio.NewReader(conn)
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, ErrNoEnd
			}
			return nil, ctxErr(ctx, fmt.Errorf("reading the response: %w", err))
		}
		typ := hdr[1]
		clen := int(binary.BigEndian.Uint16(hdr[4:6]))
		plen := int(hdr[6])
		body := make([]byte, clen+plen)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, ctxErr(ctx, fmt.Errorf("reading the response: %w", err))
		}
		body = body[:clen]
		switch typ {
		case typeStdout:
			if stdout.Len() < MaxOutput {
				stdout.Write(body)
			}
		case typeStderr:
			if stderr.Len() < MaxOutput {
				stderr.Write(body)
			}
		case typeEndRequest:
			resp := &Response{Stderr: stderr.String()}
			if len(body) >= 5 {
				resp.AppStatus = binary.BigEndian.Uint32(body[:4])
				resp.ProtocolStatus = body[4]
			}
			if err := parseStdout(resp, stdout.Bytes()); err != nil {
				return resp, err
			}
			return resp, nil
		}
	}
}

var aLongTimeAgo = time.Unix(1, 0)

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

func parseStdout(resp *Response, out []byte) error {
	resp.Status = http.StatusOK
	end := bytes.Index(out, []byte("\r\n\r\n"))
	sep := 4
	if end < 0 {
		end, sep = bytes.Index(out, []byte("\n\n")), 2
	}
	if end < 0 {
		resp.Body = out
		return fmt.Errorf("no end of headers in %d bytes of output", len(out))
	}
	resp.HeaderBytes = end + sep
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(out[:end:end], "\r\n\r\n"...))))
	h, err := tr.ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return fmt.Errorf("bad response headers: %w", err)
	}
	resp.Header = http.Header(h)
	if s := resp.Header.Get("Status"); s != "" {
		code, _, _ := strings.Cut(s, " ")
		if n, err := strconv.Atoi(code); err == nil {
			resp.Status = n
		}
	}
	resp.Body = out[end+sep:]
	return nil
}

func writeRecord(w *bytes.Buffer, typ byte, content []byte) {
	pad := (8 - len(content)%8) % 8
	var h [8]byte
	h[0] = version1
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:4], requestID)
	binary.BigEndian.PutUint16(h[4:6], uint16(len(content)))
	h[6] = byte(pad)
	w.Write(h[:])
	w.Write(content)
	w.Write(make([]byte, pad))
}

func writeLen(w *bytes.Buffer, n int) {
	if n < 128 {
		w.WriteByte(byte(n))
		return
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(n)|1<<31)
	w.Write(b[:])
}

// Params returns the parameters nginx sends for a GET of uri, with
// SCRIPT_FILENAME = root+script.
func Params(script, root, host string) map[string]string {
	return map[string]string{
		"GATEWAY_INTERFACE": "CGI/1.1",
		"SERVER_SOFTWARE":   "cfguard",
		"REQUEST_METHOD":    "GET",
		"SCRIPT_NAME":       script,
		"SCRIPT_FILENAME":   strings.TrimSuffix(root, "/") + script,
		"DOCUMENT_ROOT":     root,
		"REQUEST_URI":       script,
		"DOCUMENT_URI":      script,
		"QUERY_STRING":      "",
		"SERVER_PROTOCOL":   "HTTP/1.1",
		"SERVER_NAME":       host,
		"HTTP_HOST":         host,
		"REMOTE_ADDR":       "127.0.0.1",
		"CONTENT_LENGTH":    "",
		"CONTENT_TYPE":      "",
	}
}
