package probe

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// NextHop is where this host's routing sends a packet for dst: delivered
// locally (an address of this host), or forwarded through an interface.
type NextHop struct {
	Local   bool
	Dev     string
	DevIdx  uint32
	Gateway netip.Addr // invalid when on-link
}

// RouteTo asks the kernel (RTM_GETROUTE, in the caller's network
// namespace) where it routes dst: what a DNAT'ed packet meets after
// prerouting.
func RouteTo(dst netip.Addr) (NextHop, error) {
	nl, err := openRtnl(RouteTimeout)
	if err != nil {
		return NextHop{}, err
	}
	defer nl.Close()
	r, err := nl.get(dst.Unmap(), netip.Addr{})
	if err != nil {
		return NextHop{}, fmt.Errorf("looking up the route to %s: %w", dst, err)
	}
	h := NextHop{Local: r.Type == unix.RTN_LOCAL, Gateway: r.Gateway}
	if !h.Local {
		if r.Type != unix.RTN_UNICAST || r.Dev == "" {
			return NextHop{}, fmt.Errorf("the route to %s is %s", dst, r)
		}
		ifc, err := net.InterfaceByName(r.Dev)
		if err != nil {
			return NextHop{}, fmt.Errorf("the route to %s: %w", dst, err)
		}
		h.Dev, h.DevIdx = ifc.Name, uint32(ifc.Index)
	}
	return h, nil
}
