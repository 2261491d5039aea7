package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// dialKind is why a TCP connect (or a read after it) failed.
type dialKind int

const (
	dialOther       dialKind = iota
	dialRefused              // RST to the SYN: nothing listens (or a reject rule)
	dialTimeout              // no SYN+ACK in time
	dialUnreachable          // no route / host unreachable from here
	dialReset                // reset after the connection was made
	dialEOF                  // orderly close
)

func classifyNetErr(err error) dialKind {
	switch {
	case err == nil:
		return dialOther
	case errors.Is(err, syscall.ECONNREFUSED):
		return dialRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.EADDRNOTAVAIL):
		return dialUnreachable
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return dialReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return dialEOF
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return dialTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return dialTimeout
	}
	return dialOther
}

// dialTCP connects to the target with DialTimeout (or the context's own,
// shorter deadline). The socket is made in the caller's network namespace.
func dialTCP(ctx context.Context, hostPort string) (net.Conn, error) {
	d := net.Dialer{Timeout: DialTimeout}
	return d.DialContext(ctx, "tcp", hostPort)
}
