package apacheconf

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// VHostAddr is one address of <VirtualHost …>.
type VHostAddr struct {
	Addr    netip.Addr // invalid for * and _default_
	Port    int        // 0: any
	Default bool       // _default_
}

// VHost is one <VirtualHost> section.
type VHost struct {
	Addrs   []VHostAddr
	Name    string
	Aliases []string
	Dir     *Directive
}

// Where names the virtual host for messages.
func (v *VHost) Where() string {
	name := v.Name
	if name == "" {
		name = "(no ServerName)"
	}
	return fmt.Sprintf("<VirtualHost %s> %s (%s:%d)", strings.Join(v.Dir.Args, " "), name, v.Dir.File, v.Dir.Line)
}

// VHosts lists the virtual hosts in configuration order.
func (c *Config) VHosts() []*VHost {
	var out []*VHost
	for _, d := range flatten(c.Root) {
		if !d.Section || d.Name != "virtualhost" {
			continue
		}
		v := &VHost{Dir: d}
		for _, a := range d.Args {
			v.Addrs = append(v.Addrs, parseVHostAddr(a))
		}
		for _, sd := range flatten(d.Block) {
			switch sd.Name {
			case "servername":
				if len(sd.Args) > 0 {
					v.Name = strings.ToLower(stripPort(strings.TrimPrefix(strings.TrimPrefix(sd.Args[0], "http://"), "https://")))
				}
			case "serveralias":
				for _, a := range sd.Args {
					v.Aliases = append(v.Aliases, strings.ToLower(a))
				}
			}
		}
		out = append(out, v)
	}
	return out
}

func stripPort(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

func parseVHostAddr(a string) VHostAddr {
	host, port := a, ""
	if h, p, err := net.SplitHostPort(a); err == nil {
		host, port = h, p
	}
	v := VHostAddr{}
	if port != "" && port != "*" {
		v.Port, _ = strconv.Atoi(port)
	}
	switch host {
	case "*":
	case "_default_":
		v.Default = true
	default:
		if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
			v.Addr = ip
		}
	}
	return v
}

// SelectVHost picks the virtual host httpd would use: the vhosts whose
// address is exactly addr:port win over "*:port"; among them the first
// whose ServerName or ServerAlias matches host, else the first of them.
// nil means the main server answers.
func (c *Config) SelectVHost(addr netip.Addr, port int, host string) *VHost {
	addr = addr.Unmap()
	host = strings.ToLower(strings.TrimSuffix(stripPort(host), "."))
	var exact, wild, def []*VHost
	for _, v := range c.VHosts() {
		for _, a := range v.Addrs {
			if a.Port != 0 && a.Port != port {
				continue
			}
			switch {
			case a.Addr.IsValid() && a.Addr == addr:
				exact = append(exact, v)
			case a.Default:
				def = append(def, v)
			case !a.Addr.IsValid():
				wild = append(wild, v)
			default:
				continue
			}
			break
		}
	}
	cands := exact
	if len(cands) == 0 {
		cands = wild
	}
	if len(cands) == 0 {
		cands = def
	}
	if len(cands) == 0 {
		return nil
	}
	for _, v := range cands {
		if v.Name == host {
			return v
		}
		for _, a := range v.Aliases {
			if ok, _ := path.Match(a, host); ok {
				return v
			}
		}
	}
	return cands[0]
}
