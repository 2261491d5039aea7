package probe

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A fix names the directives of the web server that serves the target:
// nginx's (listen … ssl, ssl_certificate, server_name) or Apache's (Listen,
// SSLEngine, SSLCertificateFile, <VirtualHost>, ServerName). Which one it
// is comes from the process that holds the listening socket; when that is
// not known, a fix names both.

// Web servers, as Target.Server names them.
const (
	ServerNginx  = "nginx"
	ServerApache = "Apache"
)

// serverOfProcess maps a process's command name to a web server.
func serverOfProcess(comm string) string {
	switch {
	case comm == "nginx":
		return ServerNginx
	case comm == "apache2", strings.HasPrefix(comm, "httpd"):
		return ServerApache
	}
	return ""
}

// serverOf is the web server listening for t: the process of a socket
// that accepts on t's address and port, else (nothing there) a web server
// listening on any other port of this host, else "".
func serverOf(socks []Socket, t Target) string {
	other := ""
	for _, s := range socks {
		kind := serverOfProcess(s.Process)
		if kind == "" {
			continue
		}
		if len(matchingListeners([]Socket{s}, t.Addr, t.Port)) > 0 {
			return kind
		}
		if other == "" {
			other = kind
		}
	}
	return other
}

// serverTTL is how long ServerFor keeps what it read for an address and
// port of a network namespace: reading the sockets walks every process's
// descriptors, which 10,000 failing paths on one origin must not do 10,000
// times; a web server replaced meanwhile is seen after this long.
const serverTTL = 10 * time.Second

type serverKey struct {
	netns uint64 // the inode of the calling thread's network namespace
	at    netip.AddrPort
}

type serverSeen struct {
	server string
	at     time.Time
}

var serverCache = struct {
	sync.Mutex
	m map[serverKey]serverSeen
}{m: map[serverKey]serverSeen{}}

// ServerFor names the web server for t ("" when none is known) from the
// listening sockets of the calling thread's network namespace, read at
// most once per serverTTL for an address and port. Target.Server, when
// set, wins.
func ServerFor(t Target) string {
	if t.Server != "" {
		return t.Server
	}
	key := serverKey{netns: netnsInode(), at: netip.AddrPortFrom(t.Addr.Unmap(), uint16(t.Port))}
	now := time.Now()
	serverCache.Lock()
	seen, ok := serverCache.m[key]
	serverCache.Unlock()
	if ok && now.Sub(seen.at) < serverTTL {
		return seen.server
	}
	socks, err := ListeningSockets()
	if err != nil {
		return ""
	}
	server := serverOf(socks, t)
	serverCache.Lock()
	if len(serverCache.m) > maxServerCache {
		clear(serverCache.m) // bounded: at most one entry per origin address and port
	}
	serverCache.m[key] = serverSeen{server, now}
	serverCache.Unlock()
	return server
}

// maxServerCache bounds ServerFor's cache.
const maxServerCache = 4096

// netnsInode identifies the calling thread's network namespace (0 when
// /proc does not say).
func netnsInode() uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0
	}
	return st.Ino
}

// words are the directives of one web server for the fixes.
type words struct{ server string }

func (w words) apache() bool { return w.server == ServerApache }
func (w words) nginx() bool  { return w.server == ServerNginx }

// pick is the wording of the server, or both when it is unknown.
func (w words) pick(nginx, apache string) string {
	switch {
	case w.nginx():
		return nginx
	case w.apache():
		return apache
	}
	return nginx + "; " + apache
}

// tlsListener: how to serve TLS on port.
func (w words) tlsListener(port int) string {
	return w.pick(
		fmt.Sprintf("nginx `listen %d ssl;` with ssl_certificate and ssl_certificate_key", port),
		fmt.Sprintf("Apache `Listen %d` and a `<VirtualHost *:%d>` with `SSLEngine on`, SSLCertificateFile and SSLCertificateKeyFile (a2enmod ssl)", port, port))
}

// listenAll: how to listen on every address of port.
func (w words) listenAll(port int) string {
	return w.pick(fmt.Sprintf("nginx `listen %d;`", port), fmt.Sprintf("Apache `Listen %d`", port))
}

// start: how to start the web server and see why it does not stay up.
func (w words) start() string {
	switch {
	case w.nginx():
		return "`systemctl start nginx`; if it does not stay up, `systemctl status nginx` and its error log say why"
	case w.apache():
		return "`systemctl start apache2` (httpd on Red Hat); if it does not stay up, `apachectl configtest` and its error log say why"
	}
	return "`systemctl start nginx` or `systemctl start apache2`; if it does not stay up, `systemctl status` of that unit and its error log say why"
}

// nameBlock: the TLS server block for host on port.
func (w words) nameBlock(host string, port int) string {
	return w.pick(
		fmt.Sprintf("a TLS server block for %s (server_name and ssl_certificate) on port %d", host, port),
		fmt.Sprintf("a `<VirtualHost *:%d>` for %s (ServerName or ServerAlias %s, `SSLEngine on`, SSLCertificateFile)", port, host, host))
}

// ownCertificate: where a certificate for host goes.
func (w words) ownCertificate(host string) string {
	return w.pick(
		fmt.Sprintf("in nginx, the server block with server_name %s needs its own ssl_certificate", host),
		fmt.Sprintf("in Apache, the <VirtualHost> with ServerName %s needs its own SSLCertificateFile", host))
}

// fullChain: how to serve the intermediate certificates.
func (w words) fullChain() string {
	return w.pick(
		"nginx ssl_certificate must point to fullchain.pem, not cert.pem",
		"Apache SSLCertificateFile must point to fullchain.pem, not cert.pem (before Apache 2.4.8: SSLCertificateChainFile chain.pem)")
}

// protocols: TLS 1.2 and 1.3 on.
func (w words) protocols() string {
	return w.pick("nginx `ssl_protocols TLSv1.2 TLSv1.3;`", "Apache `SSLProtocol -all +TLSv1.2 +TLSv1.3`")
}

// ciphers: a suite list Cloudflare shares.
func (w words) ciphers() string {
	return w.pick("nginx `ssl_protocols TLSv1.2 TLSv1.3;`, and an ssl_ciphers list that includes ECDHE-RSA-AES128-GCM-SHA256",
		"Apache `SSLProtocol -all +TLSv1.2 +TLSv1.3`, and an SSLCipherSuite that includes ECDHE-RSA-AES128-GCM-SHA256")
}

// backendLog: where the web server logs that it cannot use its backend.
func (w words) backendLog() string {
	return w.pick("nginx: /var/log/nginx/error.log, `connect() failed` or `upstream timed out`",
		"Apache: /var/log/apache2/error.log or /var/log/httpd/error_log, AH01114, AH01102 or AH01075")
}
