// Package sshport finds the TCP ports SSH depends on, so that cfguard
// never guards one: a guarded port answers Cloudflare only, and SSH on it
// would be cut for everyone else, the administrator first.
//
// The ports are: 22, SSH's standard port; the Port and ListenAddress
// ports of sshd_config (see config.go); every port a process named sshd
// listens on (LISTEN sockets of /proc/net/tcp and tcp6 whose inode a
// sshd's /proc/PID/fd links to); the server port of the SSH session this
// command runs in, from SSH_CONNECTION; and the local port of the
// established connection of an sshd among this process's ancestors (the
// session's, even when sudo dropped SSH_CONNECTION).
package sshport

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// Port is a TCP port SSH depends on, and why, e.g. "sshd listens on it
// (0.0.0.0:2222)".
type Port struct {
	Port uint16
	Why  string
}

// Finder finds the ports SSH depends on. Proc is the real one; tests pass
// a fake.
type Finder interface {
	Find() ([]Port, error)
}

// Fake is a Finder that returns fixed ports.
type Fake []Port

// Find returns the fake's ports.
func (f Fake) Find() ([]Port, error) { return f, nil }

// Standard is SSH's standard port, refused whatever the detection finds.
const Standard = 22

// sshdNames are the command names of OpenSSH's server processes: the
// listener, and the per-session processes (sshd-session since 9.8).
var sshdNames = []string{"sshd", "sshd-session", "sshd-auth"}

// maxAncestors bounds the walk up the process tree.
const maxAncestors = 64

// TCP states in /proc/net/tcp.
const (
	tcpEstablished = 1
	tcpListen      = 10
)

// Proc finds the ports in /proc and the environment.
type Proc struct {
	ProcRoot string              // processes: "/proc"
	NetRoot  string              // the calling thread's network namespace: "/proc/thread-self"
	Getenv   func(string) string // os.Getenv
	Self     int                 // whose ancestors are walked: os.Getpid()
	Config   string              // sshd's configuration: "/etc/ssh/sshd_config"; "" reads none
}

// System is the Finder of this host, as this process sees it.
func System() Proc {
	net := "/proc/thread-self"
	if _, err := os.Stat(net + "/net/tcp"); err != nil {
		net = "/proc/self"
	}
	return Proc{ProcRoot: "/proc", NetRoot: net, Getenv: os.Getenv, Self: os.Getpid(), Config: "/etc/ssh/sshd_config"}
}

type socketLine struct {
	addr  net.IP
	port  uint16
	state uint64
}

// Find lists port 22, sshd's listening ports, and this session's ports.
// Processes whose file descriptors cannot be read are skipped.
func (p Proc) Find() ([]Port, error) {
	out := []Port{{Standard, "it is SSH's standard port"}}
	if p.Config != "" {
		out = append(out, configPorts(p.Config)...)
	}
	if v := p.Getenv("SSH_CONNECTION"); v != "" {
		// "client_ip client_port server_ip server_port"
		if f := strings.Fields(v); len(f) == 4 {
			if n, err := strconv.ParseUint(f[3], 10, 16); err == nil && n > 0 {
				out = append(out, Port{uint16(n), "the SSH session running this command arrived on it (SSH_CONNECTION)"})
			}
		}
	}
	procFS, err := procfs.NewFS(p.ProcRoot)
	if err != nil {
		return out, fmt.Errorf("reading %s: %w", p.ProcRoot, err)
	}
	netFS, err := procfs.NewFS(p.NetRoot)
	if err != nil {
		return out, fmt.Errorf("reading %s: %w", p.NetRoot, err)
	}
	sockets := map[uint64]socketLine{}
	//lint:ignore SA1019 /proc/net/tcp on purpose: a fake /proc tree tests it, and sock_diag does not name processes either
	for _, read := range []func() (procfs.NetTCP, error){netFS.NetTCP, netFS.NetTCP6} {
		lines, err := read()
		if err != nil {
			if os.IsNotExist(err) {
				continue // tcp6 is absent when IPv6 is disabled
			}
			return out, fmt.Errorf("reading %s/net/tcp: %w", p.NetRoot, err)
		}
		for _, l := range lines {
			if l.Inode != 0 && l.LocalPort <= 0xffff {
				sockets[l.Inode] = socketLine{l.LocalAddr, uint16(l.LocalPort), l.St}
			}
		}
	}

	// sshd's listeners.
	procs, err := procFS.AllProcs()
	if err != nil {
		return out, fmt.Errorf("listing processes in %s: %w", p.ProcRoot, err)
	}
	for _, pr := range procs {
		comm, err := pr.Comm()
		if err != nil || !slices.Contains(sshdNames, comm) {
			continue
		}
		for _, s := range socketsOf(pr, sockets) {
			if s.state == tcpListen {
				out = append(out, Port{s.port, fmt.Sprintf("%s (pid %d) listens on it (%s)", comm, pr.PID, net.JoinHostPort(s.addr.String(), strconv.Itoa(int(s.port))))})
			}
		}
	}

	// The session this command runs in.
	pid := p.Self
	for range maxAncestors {
		pr, err := procFS.Proc(pid)
		if err != nil {
			break
		}
		st, err := pr.Stat()
		if err != nil {
			break
		}
		if slices.Contains(sshdNames, st.Comm) {
			for _, s := range socketsOf(pr, sockets) {
				if s.state == tcpEstablished {
					out = append(out, Port{s.port, fmt.Sprintf("the SSH session running this command is connected on it (%s, pid %d)", st.Comm, pr.PID)})
				}
			}
		}
		if st.PPID <= 1 || st.PPID == pid {
			break
		}
		pid = st.PPID
	}
	return out, nil
}

// socketsOf returns the TCP sockets of this namespace that pr holds.
func socketsOf(pr procfs.Proc, sockets map[uint64]socketLine) []socketLine {
	targets, err := pr.FileDescriptorTargets()
	if err != nil {
		return nil
	}
	var out []socketLine
	for _, t := range targets {
		in, ok := strings.CutPrefix(t, "socket:[")
		if !ok {
			continue
		}
		inode, err := strconv.ParseUint(strings.TrimSuffix(in, "]"), 10, 64)
		if err != nil {
			continue
		}
		if s, ok := sockets[inode]; ok {
			out = append(out, s)
		}
	}
	return out
}

// RefusedError is the refusal to guard a port SSH depends on.
type RefusedError struct {
	Port Port
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refusing to guard port %d: %s, and a guarded port answers only Cloudflare, so SSH on it would be cut for everyone else; nothing changed — take %d out of --ports, or pass --guard-ssh-port %d if you mean it",
		e.Port.Port, e.Port.Why, e.Port.Port, e.Port.Port)
}

// Check refuses to guard a port of ssh unless override names it. The
// first such port, in the order of guarded, is the one reported.
func Check(guarded []uint16, ssh []Port, override []uint16) error {
	for _, g := range guarded {
		if slices.Contains(override, g) {
			continue
		}
		for _, s := range ssh {
			if s.Port == g {
				return &RefusedError{s}
			}
		}
	}
	return nil
}
