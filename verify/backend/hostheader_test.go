package backend

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// A Host from the API with CR LF in it (an Origin Rule's host_header, a
// record's name) must not add a header to the GET / sent to a backend:
// nothing is sent, and the result says why.
func TestProbeHTTPRefusesHostWithLineBreak(t *testing.T) {
	for _, host := range []string{"a.example.com\r\nX-Injected: 1", "a.example.com\nX: 1", "a b.example.com", "a\x00.example.com", ""} {
		client, server := net.Pipe()
		var got bytes.Buffer
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			server.SetDeadline(time.Now().Add(2 * time.Second))
			io.Copy(&got, server)
		}()
		dialed := false
		dial := func() (net.Conn, probeResult) { dialed = true; return client, probeResult{kind: probeOK} }
		r := probeHTTP(context.Background(), dial, "http", host, time.Second)
		client.Close()
		wg.Wait()
		if strings.Contains(got.String(), "X-Injected") || strings.Contains(got.String(), "X: 1") || got.Len() > 0 {
			t.Errorf("Host %q: sent %q, want nothing", host, got.String())
		}
		if dialed {
			t.Errorf("Host %q: dialed the backend, want no connection", host)
		}
		if r.kind != probeError || r.err == nil || !strings.Contains(r.err.Error(), "no HTTP request may carry") {
			t.Errorf("Host %q: %v %v, want probeError saying why", host, r.kind, r.err)
		}
	}
}

func TestValidHost(t *testing.T) {
	for h, want := range map[string]bool{
		"www.example.com": true, "backend.example.com:8080": true, "[2001:db8::1]:443": true, "_acme.example.com": true,
		"a\r\nb": false, "a b": false, "": false, "bücher.example": false, strings.Repeat("a", 256): false,
	} {
		if got := validHost(h); got != want {
			t.Errorf("validHost(%q) = %v, want %v", h, got, want)
		}
	}
}
