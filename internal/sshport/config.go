package sshport

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// sshd's configuration names its ports too, and it is readable where
// sshd's file descriptors are not: a process with only CAP_NET_ADMIN (the
// systemd units) may not read another root process's /proc/PID/fd (the
// kernel's ptrace access check), so from a unit the listeners of sshd are
// invisible. Port and ListenAddress lines of sshd_config and its Includes
// are read as well.

// Bounds of the configuration read.
const (
	maxConfigBytes = 1 << 20
	maxIncludes    = 8 // nesting depth
	maxConfigFiles = 256
)

// configPorts returns the ports sshd's configuration at path names, with
// the file and line of each. A missing file names none.
func configPorts(path string) []Port {
	var out []Port
	files := 0
	readConfig(path, 0, &files, &out)
	return out
}

func readConfig(path string, depth int, files *int, out *[]Port) {
	if depth > maxIncludes || *files >= maxConfigFiles {
		return
	}
	*files++
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return
	}
	sc := bufio.NewScanner(io.LimitReader(f, maxConfigBytes))
	for n := 1; sc.Scan(); n++ {
		key, val, ok := configLine(sc.Text())
		if !ok {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, n)
		switch key {
		case "match":
			return // Port and ListenAddress are not allowed in Match blocks; the rest is for other keys
		case "include":
			for _, pat := range strings.Fields(val) {
				if !filepath.IsAbs(pat) {
					pat = filepath.Join("/etc/ssh", pat) // sshd's rule for relative Includes
				}
				matches, _ := filepath.Glob(pat)
				for _, m := range matches {
					readConfig(m, depth+1, files, out)
				}
			}
		case "port":
			if p, err := strconv.ParseUint(val, 10, 16); err == nil && p > 0 {
				*out = append(*out, Port{uint16(p), fmt.Sprintf("sshd is configured to listen on it (Port, %s)", where)})
			}
		case "listenaddress":
			// "host:port", "[v6]:port", optionally followed by "rdomain X".
			addr := strings.Fields(val)[0]
			if _, port, err := net.SplitHostPort(addr); err == nil {
				if p, err := strconv.ParseUint(port, 10, 16); err == nil && p > 0 {
					*out = append(*out, Port{uint16(p), fmt.Sprintf("sshd is configured to listen on it (ListenAddress %s, %s)", addr, where)})
				}
			}
		}
	}
}

// configLine splits "Keyword value" or "Keyword=value"; comments and
// blank lines are not ok.
func configLine(line string) (key, val string, ok bool) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return "", "", false
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return "", "", false
	}
	key = strings.ToLower(line[:i])
	val = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line[i:]), "="))
	val = strings.Trim(val, `"`)
	return key, val, val != ""
}
