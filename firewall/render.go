package firewall

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"go4.org/netipx"
)

// Render returns the wanted table as `nft` text, in the exact layout of
// `nft list table inet <Table>` (nftables 1.0.6): loading it with `nft -f`
// makes the same table Apply makes, and listing what Apply made prints it.
// Prefixes Normalize would refuse are left out.
func Render(cfg Config, w Want) string {
	var ok []netip.Prefix
	for _, p := range w.Cloudflare {
		if _, _, err := Normalize([]netip.Prefix{p}); err == nil {
			ok = append(ok, p)
		}
	}
	var allow []netip.Prefix
	for _, p := range w.Allow {
		if _, _, err := Normalize([]netip.Prefix{p}); err == nil {
			allow = append(allow, p)
		}
	}
	want := renderContent(cfg, ok, allow)

	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n\tcomment %q\n", cfg.Table, Mark)
	for i, spec := range setSpecs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n", spec.name, spec.keyType.Name)
		var elems []string
		perLine := 5 // nft's layout: 5 ports, 2 IPv4 or 1 IPv6 element per line
		if spec.interval {
			b.WriteString("\t\tflags interval\n")
			perLine = 2
			if spec.keyType.Bytes == 16 {
				perLine = 1
			}
			for _, r := range Ranges(want[spec.name].prefixes) {
				elems = append(elems, rangeText(r))
			}
		} else {
			for _, p := range want[spec.name].ports {
				elems = append(elems, strconv.Itoa(int(p)))
			}
		}
		if len(elems) > 0 {
			b.WriteString("\t\telements = { ")
			for i, e := range elems {
				if i > 0 {
					if i%perLine == 0 {
						b.WriteString(",\n\t\t\t     ")
					} else {
						b.WriteString(", ")
					}
				}
				b.WriteString(e)
			}
			b.WriteString(" }\n")
		}
		b.WriteString("\t}\n")
	}
	for _, spec := range chainSpecs() {
		fmt.Fprintf(&b, "\n\tchain %s {\n", spec.name)
		fmt.Fprintf(&b, "\t\ttype filter hook %s priority %s; policy accept;\n", hookName(spec.hook), priorityText(Priority))
		for _, r := range spec.rules {
			fmt.Fprintf(&b, "\t\t%s\n", r.text)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// rangeText prints a range as nft does: an address, a prefix, or from-to.
func rangeText(r netipx.IPRange) string {
	if p, ok := r.Prefix(); ok {
		if p.IsSingleIP() {
			return p.Addr().String()
		}
		return p.String()
	}
	return r.From().String() + "-" + r.To().String()
}

// priorityText is a filter-hook priority as nft prints it.
func priorityText(p int) string {
	switch {
	case p == 0:
		return "filter"
	case p < 0:
		return fmt.Sprintf("filter - %d", -p)
	}
	return fmt.Sprintf("filter + %d", p)
}

// renderContent is wanted without its refusal of empty lists: Render
// prints whatever it is given.
func renderContent(cfg Config, cf, allow []netip.Prefix) map[string]content {
	cf4, cf6, _ := Normalize(cf)
	a4, a6, _ := Normalize(allow)
	return map[string]content{
		SetCF4: {prefixes: cf4}, SetCF6: {prefixes: cf6},
		SetAllow4: {prefixes: a4}, SetAllow6: {prefixes: a6},
		SetPorts: {ports: cfg.sortedPorts()},
	}
}
