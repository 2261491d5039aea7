// Command cfapi-standin serves the stand-in Cloudflare API (internal/cfapitest)
// for the demo and the whole-command benchmarks. It prints its base URL on
// the first line of standard output and serves until killed. It is never
// installed.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/cfguard/cfguard/internal/cfapitest"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on (loopback only)")
	alternate := flag.Bool("alternate", false, "answer /ips with two lists in turn (a changing sync every time)")
	zone := flag.String("zone", "", "add this zone (token: cfapitest.DefaultToken) ...")
	hosts := flag.Int("hosts", 0, "... with this many proxied A records host-N.<zone> ...")
	origin := flag.String("origin", "", "... pointing at this address, where a tiny origin answers on :80 and :443")
	noServe := flag.Bool("no-origin-server", false, "with -origin: start no tiny origin (a real web server answers there)")
	ssl := flag.String("ssl", "full", "the zone's SSL mode")
	var records []string
	flag.Func("record", "with -zone: a proxied A/AAAA record NAME=ADDRESS of that zone (repeatable; no origin is started for it)", func(v string) error {
		name, addr, ok := strings.Cut(v, "=")
		if ip, err := netip.ParseAddr(addr); !ok || name == "" || err != nil || ip.Zone() != "" {
			return fmt.Errorf("want NAME=ADDRESS, got %q", v)
		}
		records = append(records, v)
		return nil
	})
	var edges []cfapitest.EdgeRow
	flag.Func("edge", "with -zone: Cloudflare served HOST=STATUS:COUNT[:ORIGINSTATUS] in the last minutes (repeatable; POST /graphql reports it)", func(v string) error {
		row, err := parseEdge(v)
		if err == nil {
			edges = append(edges, row)
		}
		return err
	})
	noAnalytics := flag.Bool("no-analytics", false, "the token lacks Analytics:Read: POST /graphql answers the authorization error")
	configRules := flag.String("config-rules", "", "with -zone: the zone's Configuration Rules, as a JSON array of rules (id, description, expression, action, action_parameters, enabled)")
	originRules := flag.String("origin-rules", "", "with -zone: the zone's Origin Rules, as a JSON array of rules")
	noRulesPerm := flag.Bool("no-rules-permission", false, "the token may read zones, settings and DNS but no rules (403, code 10000)")
	flag.Parse()

	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintln(os.Stderr, "cfapi-standin: --listen must be a loopback address:port")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cfapi-standin:", err)
		os.Exit(1)
	}
	s := cfapitest.NewServerOn(ln)
	defer s.Close()
	if *alternate {
		// Every other answer adds the benchmarking prefix 198.18.0.0/15, so
		// each sync adds or removes one range (and never trips the shrink guard).
		var mu sync.Mutex
		flip := false
		next := s.Config.Handler
		s.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ips" {
				mu.Lock()
				flip = !flip
				v4 := cfapitest.DefaultIPv4
				if flip {
					v4 = append(append([]string{}, v4...), "198.18.0.0/15")
				}
				s.SetIPs(v4, cfapitest.DefaultIPv6, cfapitest.DefaultJDCloud, "")
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	}
	if *zone != "" {
		id := s.AddZone(*zone, map[string]any{"ssl": *ssl})
		for i := 0; i < *hosts; i++ {
			s.AddRecord(id, "A", fmt.Sprintf("host-%d.%s", i, *zone), *origin, true)
		}
		for phase, js := range map[string]string{"http_config_settings": *configRules, "http_request_origin": *originRules} {
			if js == "" {
				continue
			}
			rules, err := cfapitest.ParseRules([]byte(js))
			if err != nil {
				fmt.Fprintf(os.Stderr, "cfapi-standin: rules of %s: %v\n", phase, err)
				os.Exit(2)
			}
			s.SetPhaseRules(id, phase, rules)
		}
		for _, r := range records {
			name, addr, _ := strings.Cut(r, "=")
			typ := "A"
			if netip.MustParseAddr(addr).Is6() {
				typ = "AAAA"
			}
			s.AddRecord(id, typ, name, addr, true)
		}
		s.SetEdgeRows(id, edges...)
	}
	if *noAnalytics || *noRulesPerm {
		perms := []string{cfapitest.PermZoneRead, cfapitest.PermZoneSettingsRead, cfapitest.PermDNSRead}
		if !*noAnalytics {
			perms = append(perms, cfapitest.PermAnalyticsRead)
		}
		if !*noRulesPerm {
			perms = append(perms, cfapitest.PermConfigRulesRead, cfapitest.PermOriginRulesRead, cfapitest.PermPageRulesRead)
		}
		s.AddToken(cfapitest.Token{Value: cfapitest.DefaultToken, Permissions: perms})
	}
	if *origin != "" && !*noServe {
		if err := serveOrigin(*origin); err != nil {
			fmt.Fprintln(os.Stderr, "cfapi-standin:", err)
			os.Exit(1)
		}
	}
	fmt.Println(s.URL)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}
