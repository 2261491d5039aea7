package cloudflare

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cfguard/cfguard/internal/cfapitest"
)

// An answer larger than MaxBodyBytes is one clear error, and the read stops
// there: the stand-in sees the client close before it sent everything.
func TestAnswerTooLarge(t *testing.T) {
	const huge = 300 << 20 // the 300 MB answer that once took 1.4 GB of memory
	for _, tt := range []struct {
		name string
		path func(zoneID string) string
		call func(c *Client, zoneID string) error
		want string
	}{
		{"zones", func(string) string { return "/zones" },
			func(c *Client, _ string) error { _, err := c.Zones(context.Background(), nil); return err },
			"cannot list zones: Cloudflare answered more than 16 MiB in one answer"},
		{"DNS records", func(id string) string { return "/zones/" + id + "/dns_records" },
			func(c *Client, id string) error { _, err := c.DNSRecords(context.Background(), id); return err },
			"cannot list DNS records: Cloudflare answered more than 16 MiB in one answer"},
		{"a setting", func(id string) string { return "/zones/" + id + "/settings/ssl" },
			func(c *Client, id string) error { _, err := c.Settings(context.Background(), id); return err },
			"cannot read the zone setting ssl: Cloudflare answered more than 16 MiB in one answer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := cfapitest.New(t)
			id := s.AddZone("example.com", nil)
			seen := s.SetOversize(tt.path(id), huge)
			err := tt.call(newClient(t, s, cfapitest.DefaultToken), id)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
			if e, ok := err.(*Error); !ok || e.Kind != KindAPI {
				t.Errorf("error %T %+v, want an *Error of KindAPI", err, err)
			}
			var got []cfapitest.Oversize
			for len(got) == 0 || len(seen) > 0 {
				select {
				case o := <-seen:
					got = append(got, o)
				case <-time.After(30 * time.Second): // a bound on the wait, not a timing assertion
					t.Fatal("the stand-in never finished serving the answer")
				}
			}
			if len(got) != 1 {
				t.Errorf("the oversized answer was asked for %d times, want once (no retry)", len(got))
			}
			for _, o := range got {
				if o.Complete || o.Sent >= o.Size {
					t.Errorf("the stand-in sent %d of %d bytes: the client read it all", o.Sent, o.Size)
				}
				t.Logf("stand-in sent %s of %s before the client closed", mib(o.Sent), mib(o.Size))
			}
		})
	}
}

// Exactly MaxBodyBytes is still read (the cap is not off by one).
func TestAnswerAtTheLimit(t *testing.T) {
	s := cfapitest.New(t)
	seen := s.SetOversize("/zones", MaxBodyBytes)
	zs, err := newClient(t, s, cfapitest.DefaultToken).Zones(context.Background(), nil)
	if err != nil || len(zs) != 0 {
		t.Fatalf("Zones = %v, %v; want no zone and no error", zs, err)
	}
	if o := <-seen; !o.Complete {
		t.Errorf("the stand-in sent %d of %d bytes", o.Sent, o.Size)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
