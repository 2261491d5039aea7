package backend

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// proc is one process as /proc shows it.
type proc struct {
	pid, ppid int
	comm      string
	argv      []string // NUL-separated cmdline; a set process title is one element
	uid       uint32   // effective
	gid       uint32
	groups    []uint32
	unit      string // the systemd unit from /proc/PID/cgroup, "" when none
	userUnit  bool   // unit belongs to a user's service manager (under user@UID.service)
	env       map[string]string
	netns     string // "net:[4026531840]", "" when not read
	scope     string // the container's cgroup scope ("docker-0123456789ab"), "" when none
}

// title is the command line as one string (nginx and php-fpm rewrite it).
func (p *proc) title() string { return strings.Join(p.argv, " ") }

// scanProcs lists the processes under root ("/proc") that share the calling
// thread's network namespace: a web server or backend in another one (a
// container, a test sandbox) does not serve this host's sockets, and judging
// it as if it did names the wrong culprit. Processes that vanish or cannot
// be read are skipped; denied counts cmdlines that could not be read for
// lack of permission. A process whose namespace cannot be read is kept.
func scanProcs(root string) (ps []*proc, denied int) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, 0
	}
	own, _ := os.Readlink(filepath.Join(root, "thread-self", "ns", "net"))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ns := ""
		if own != "" {
			if ns, err = os.Readlink(filepath.Join(root, e.Name(), "ns", "net")); err == nil && ns != own {
				continue
			}
		}
		p, err := readProc(root, pid)
		if err != nil {
			if os.IsPermission(err) {
				denied++
			}
			continue
		}
		p.netns = ns
		ps = append(ps, p)
	}
	return ps, denied
}

func readProc(root string, pid int) (*proc, error) {
	dir := filepath.Join(root, strconv.Itoa(pid))
	st, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return nil, err
	}
	p := &proc{pid: pid}
	for _, line := range strings.Split(string(st), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		switch k {
		case "Name":
			p.comm = strings.TrimSpace(v)
		case "PPid":
			p.ppid, _ = strconv.Atoi(strings.TrimSpace(v))
		case "Uid":
			if len(f) > 1 {
				n, _ := strconv.ParseUint(f[1], 10, 32)
				p.uid = uint32(n)
			}
		case "Gid":
			if len(f) > 1 {
				n, _ := strconv.ParseUint(f[1], 10, 32)
				p.gid = uint32(n)
			}
		case "Groups":
			for _, g := range f {
				n, _ := strconv.ParseUint(g, 10, 32)
				p.groups = append(p.groups, uint32(n))
			}
		}
	}
	cl, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return nil, err
	}
	cl = bytes.TrimRight(cl, "\x00")
	for _, a := range bytes.Split(cl, []byte{0}) {
		p.argv = append(p.argv, string(a))
	}
	if cg, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		p.unit, p.userUnit = cgroupUnit(string(cg))
		p.scope = cgroupScope(string(cg))
	}
	return p, nil
}

// environ reads the process's environment (root only, usually).
func (p *proc) environ(root string) map[string]string {
	if p.env != nil {
		return p.env
	}
	p.env = map[string]string{}
	b, err := os.ReadFile(filepath.Join(root, strconv.Itoa(p.pid), "environ"))
	if err != nil {
		return p.env
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			p.env[k] = v
		}
	}
	return p.env
}

// cgroupUnit finds the service unit in /proc/PID/cgroup
// ("0::/system.slice/php8.2-fpm.service" → "php8.2-fpm.service") and says
// whether it belongs to a user's service manager
// ("…/user@1000.service/app.slice/app.service").
func cgroupUnit(cg string) (unit string, user bool) {
	for _, line := range strings.Split(cg, "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		parts := strings.Split(f[2], "/")
		for i := len(parts) - 1; i >= 0; i-- {
			if strings.HasSuffix(parts[i], ".service") {
				for _, above := range parts[:i] {
					if strings.HasPrefix(above, "user@") && strings.HasSuffix(above, ".service") {
						user = true
					}
				}
				return parts[i], user
			}
		}
	}
	return "", false
}

// children lists the processes whose parent is pid.
func children(ps []*proc, pid int) []*proc {
	var out []*proc
	for _, p := range ps {
		if p.ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// argValue returns the value of a flag ("-c") in a process title or argv,
// accepting "-c VALUE" and "-cVALUE".
func argValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if strings.HasPrefix(a, flag) && len(a) > len(flag) && !strings.HasPrefix(a, "--") {
			return a[len(flag):]
		}
	}
	return ""
}
