package fastcgi

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/nstest"
)

// fakeServer answers one request with stdout, then END_REQUEST (or closes
// early when end is false).
func fakeServer(t *testing.T, stdout string, end bool) net.Conn {
	c1, c2 := net.Pipe()
	go func() {
		defer c2.Close()
		var hdr [8]byte
		for { // read until the empty STDIN record
			if _, err := io.ReadFull(c2, hdr[:]); err != nil {
				return
			}
			n := int(binary.BigEndian.Uint16(hdr[4:6])) + int(hdr[6])
			io.CopyN(io.Discard, c2, int64(n))
			if hdr[1] == typeStdin && n == 0 {
				break
			}
		}
		var out bytes.Buffer
		writeRecord(&out, typeStdout, []byte(stdout))
		writeRecord(&out, typeStderr, []byte("PHP message: hello"))
		if end {
			writeRecord(&out, typeEndRequest, []byte{0, 0, 0, 0, 0, 0, 0, 0})
		}
		c2.Write(out.Bytes())
	}()
	return c1
}

func TestDo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := Do(ctx, fakeServer(t, "Status: 404 Not Found\r\nContent-type: text/html\r\n\r\nFile not found.\n", true), Params("/x.php", "/var/www", "a.test"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%d %q %q", resp.Status, resp.Body, resp.Stderr); got != `404 "File not found.\n" "PHP message: hello"` {
		t.Errorf("got %s", got)
	}
	if _, err := Do(ctx, fakeServer(t, "Content-type: text/plain\r\n\r\npong", false), nil); err != ErrNoEnd {
		t.Errorf("closed early: err = %v, want ErrNoEnd", err)
	}
}

// startFPM starts a real php-fpm with a ping page, in a namespace.
func startFPM(tb testing.TB) string {
	nstest.RequireRoot(tb, "php-fpm8.2")
	ns := nstest.New(tb)
	dir := tb.TempDir()
	sock := filepath.Join(dir, "fpm.sock")
	conf := filepath.Join(dir, "php-fpm.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[global]\npid = %[1]s/fpm.pid\nerror_log = %[1]s/fpm.log\ndaemonize = no\n[www]\nuser = www-data\ngroup = www-data\nlisten = %[2]s\npm = static\npm.max_children = 2\nping.path = /ping\n", dir, sock)), 0o644)
	if _, err := exec.LookPath("php-fpm8.2"); err != nil {
		tb.Skip("skipped: php-fpm8.2 is not installed")
	}
	ns.Start("php-fpm8.2", "-F", "-R", "-y", conf)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		if time.Now().After(deadline) {
			tb.Fatal("php-fpm did not create its socket")
		}
	}
}

func ping(tb testing.TB, sock string) *Response {
	conn, err := net.Dial("unix", sock)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := Do(ctx, conn, Params("/ping", "/nonexistent", "a.test"))
	if err != nil {
		tb.Fatal(err)
	}
	return resp
}

func TestPingRealFPM(t *testing.T) {
	sock := startFPM(t)
	if r := ping(t, sock); r.Status != 200 || string(bytes.TrimSpace(r.Body)) != "pong" {
		t.Errorf("ping: %d %q", r.Status, r.Body)
	}
}

func BenchmarkFastCGIPing(b *testing.B) {
	sock := startFPM(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ping(b, sock)
	}
}
