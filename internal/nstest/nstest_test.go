package nstest

import (
	"net"
	"strings"
	"testing"
)

func TestLinkAndDo(t *testing.T) {
	a, b := New(t), New(t)
	Link(t, a, b, []string{"192.0.2.1/24", "2001:db8::1/64"}, []string{"192.0.2.2/24", "2001:db8::2/64"})
	if out := b.Run("ip", "-o", "addr"); !strings.Contains(out, "192.0.2.2/24") {
		t.Fatalf("address missing in %s: %s", b.Name, out)
	}
	var ln net.Listener
	if err := b.Do(func() (err error) { ln, err = net.Listen("tcp", "[2001:db8::2]:8080"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	var got string
	err := a.Do(func() error {
		c, err := net.Dial("tcp", "[2001:db8::2]:8080")
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 2)
		_, err = c.Read(buf)
		got = string(buf)
		return err
	})
	if err != nil || got != "hi" {
		t.Fatalf("dial across the veth: %q, %v", got, err)
	}
}
