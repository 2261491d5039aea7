package nstest

import (
	"net"
	"testing"
)

// Serve listens on TCP addr (e.g. "[::]:443", "192.0.2.1:80") inside the
// namespace and answers every connection with "ok" and a close, until the
// test ends. It is the stand-in for a web server where only reachability
// matters.
func (n *NS) Serve(t testing.TB, addr string) {
	t.Helper()
	var ln net.Listener
	if err := n.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatalf("in %s: listen on %s: %v", n.Name, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
}
