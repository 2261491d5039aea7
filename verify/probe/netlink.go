package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// route is one entry of the kernel's routing tables, as a lookup or a dump
// returns it.
type route struct {
	Dst       netip.Prefix // 0.0.0.0/0 or ::/0 for a default route
	Type      uint8        // unix.RTN_UNICAST, RTN_BLACKHOLE, …
	Gateway   netip.Addr   // invalid when on-link
	Dev       string
	Table     uint32
	Multipath bool
}

var routeTypeNames = map[uint8]string{
	unix.RTN_BLACKHOLE:   "blackhole",
	unix.RTN_UNREACHABLE: "unreachable",
	unix.RTN_PROHIBIT:    "prohibit",
	unix.RTN_THROW:       "throw",
	unix.RTN_LOCAL:       "local",
}

// String is the route as `ip route` prints it: "default via 192.0.2.254
// dev eth0", "blackhole 203.0.113.0/24", "172.0.0.0/8 via 10.0.0.1 dev eth1".
func (r route) String() string {
	s := r.Dst.String()
	if r.Dst.Bits() == 0 {
		s = "default"
	}
	if name, ok := routeTypeNames[r.Type]; ok {
		s = name + " " + s
	}
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	if r.Multipath {
		s += " (multipath)"
	}
	if r.Dev != "" && r.Type == unix.RTN_UNICAST {
		s += " dev " + r.Dev
	}
	if r.Table != 0 && r.Table != unix.RT_TABLE_MAIN {
		s += fmt.Sprintf(" table %d", r.Table)
	}
	return s
}

// rtnl is a NETLINK_ROUTE socket in the calling thread's network namespace.
type rtnl struct {
	fd  int
	seq uint32
}

func openRtnl(timeout time.Duration) (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening a netlink socket: %w", err)
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink socket timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding a netlink socket: %w", err)
	}
	return &rtnl{fd: fd}, nil
}

func (n *rtnl) Close() error { return unix.Close(n.fd) }

// get asks for the route the kernel would use toward dst (from src when
// valid). With RTM_F_FIB_MATCH the answer is the matching table entry
// (its prefix, gateway, type). A route the kernel refuses to use comes
// back as an errno: ENETUNREACH (none), EINVAL (blackhole), EHOSTUNREACH
// (unreachable), EACCES (prohibit).
func (n *rtnl) get(dst, src netip.Addr) (route, error) {
	fam := uint8(unix.AF_INET)
	if dst.Is6() {
		fam = unix.AF_INET6
	}
	rt := unix.RtMsg{Family: fam, Dst_len: uint8(dst.BitLen()), Flags: unix.RTM_F_FIB_MATCH}
	attrs := rtattr(unix.RTA_DST, dst.AsSlice())
	if src.IsValid() {
		rt.Src_len = uint8(src.BitLen())
		attrs = append(attrs, rtattr(unix.RTA_SRC, src.AsSlice())...)
	}
	msgs, err := n.request(unix.RTM_GETROUTE, unix.NLM_F_REQUEST, rt, attrs)
	if err != nil {
		return route{}, err
	}
	for _, m := range msgs {
		if m.Header.Type == unix.RTM_NEWROUTE {
			return parseRoute(m)
		}
	}
	return route{}, errors.New("netlink: no route in the answer")
}

// dump lists the routes of one family in every table.
func (n *rtnl) dump(fam uint8) ([]route, error) {
	msgs, err := n.request(unix.RTM_GETROUTE, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, unix.RtMsg{Family: fam}, nil)
	if err != nil {
		return nil, err
	}
	var out []route
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWROUTE {
			continue
		}
		if r, err := parseRoute(m); err == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

func (n *rtnl) request(typ, flags uint16, rt unix.RtMsg, attrs []byte) ([]syscall.NetlinkMessage, error) {
	n.seq++
	body := make([]byte, unix.SizeofRtMsg)
	body[0], body[1], body[2], body[3] = rt.Family, rt.Dst_len, rt.Src_len, rt.Tos
	body[4], body[5], body[6], body[7] = rt.Table, rt.Protocol, rt.Scope, rt.Type
	binary.NativeEndian.PutUint32(body[8:], rt.Flags)
	body = append(body, attrs...)
	hdr := make([]byte, unix.SizeofNlMsghdr)
	binary.NativeEndian.PutUint32(hdr[0:], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(hdr[4:], typ)
	binary.NativeEndian.PutUint16(hdr[6:], flags)
	binary.NativeEndian.PutUint32(hdr[8:], n.seq)
	if err := unix.Sendto(n.fd, append(hdr, body...), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink send: %w", err)
	}
	var out []syscall.NetlinkMessage
	buf := make([]byte, 1<<16)
	for {
		nr, _, err := unix.Recvfrom(n.fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:nr])
		if err != nil {
			return nil, fmt.Errorf("netlink parse: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != n.seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
						return nil, syscall.Errno(-e)
					}
				}
				return out, nil
			}
			out = append(out, m)
			if flags&unix.NLM_F_DUMP == 0 {
				return out, nil
			}
		}
	}
}

func rtattr(typ uint16, data []byte) []byte {
	l := unix.SizeofRtAttr + len(data)
	b := make([]byte, (l+3)&^3)
	binary.NativeEndian.PutUint16(b[0:], uint16(l))
	binary.NativeEndian.PutUint16(b[2:], typ)
	copy(b[unix.SizeofRtAttr:], data)
	return b
}

func parseRoute(m syscall.NetlinkMessage) (route, error) {
	if len(m.Data) < unix.SizeofRtMsg {
		return route{}, errors.New("netlink: short route message")
	}
	fam, dstLen, table, typ := m.Data[0], int(m.Data[1]), uint32(m.Data[4]), m.Data[7]
	r := route{Type: typ, Table: table}
	zero := netip.IPv4Unspecified()
	if fam == unix.AF_INET6 {
		zero = netip.IPv6Unspecified()
	}
	dst := zero
	attrs, err := syscall.ParseNetlinkRouteAttr(&m)
	if err != nil {
		return route{}, fmt.Errorf("netlink route attributes: %w", err)
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.RTA_DST:
			if d, ok := netip.AddrFromSlice(a.Value); ok {
				dst = d
			}
		case unix.RTA_GATEWAY:
			if g, ok := netip.AddrFromSlice(a.Value); ok {
				r.Gateway = g
			}
		case unix.RTA_VIA:
			if len(a.Value) > 2 {
				if g, ok := netip.AddrFromSlice(a.Value[2:]); ok {
					r.Gateway = g
				}
			}
		case unix.RTA_OIF:
			if len(a.Value) >= 4 {
				if ifc, err := net.InterfaceByIndex(int(binary.NativeEndian.Uint32(a.Value))); err == nil {
					r.Dev = ifc.Name
				}
			}
		case unix.RTA_TABLE:
			if len(a.Value) >= 4 {
				r.Table = binary.NativeEndian.Uint32(a.Value)
			}
		case unix.RTA_MULTIPATH:
			r.Multipath = true
		}
	}
	p, err := dst.Prefix(dstLen)
	if err != nil {
		return route{}, err
	}
	r.Dst = p
	return r, nil
}
