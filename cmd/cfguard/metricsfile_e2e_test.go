package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cfguard/cfguard/internal/cfapitest"
)

// readProm parses a metrics file into "name{a="x",b="y"}" → value.
func readProm(t *testing.T, path string) map[string]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the metrics file: %v", err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	out := map[string]float64{}
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"=\""+l.GetValue()+"\"")
			}
			sort.Strings(ls)
			k := name
			if len(ls) > 0 {
				k += "{" + strings.Join(ls, ",") + "}"
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			out[k] = v
		}
	}
	return out
}

func wantProm(t *testing.T, what string, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: %s = %v (present %v), want %v\nfile: %v", what, k, g, ok, v, got)
		}
	}
}

func TestMetricsFileSyncStatus(t *testing.T) {
	s := newSite(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "cfguard-sync.prom")
	s.must("sync", "--metrics-file", file)
	got := readProm(t, file)
	wantProm(t, "sync", got, map[string]float64{
		"cfguard_sync_success":                1,
		"cfguard_guard_protected":             1,
		`cfguard_guard_ranges{family="ipv4"}`: 2,
		`cfguard_guard_ranges{family="ipv6"}`: 2,
	})
	if got["cfguard_guard_last_sync_timestamp_seconds"] < 1.7e9 {
		t.Errorf("last sync timestamp %v", got["cfguard_guard_last_sync_timestamp_seconds"])
	}
	// A failed sync says so, and the file still tells the guard's state.
	if _, _, code := s.cfguard("--api-url", "http://127.0.0.1:9", "sync", "--metrics-file", file); code != 1 {
		t.Errorf("sync against no API: exit %d, want 1", code)
	}
	wantProm(t, "failed sync", readProm(t, file), map[string]float64{"cfguard_sync_success": 0, "cfguard_guard_protected": 1})

	status := filepath.Join(dir, "cfguard-status.prom")
	s.must("status", "--metrics-file", status)
	wantProm(t, "status", readProm(t, status), map[string]float64{"cfguard_guard_protected": 1, "cfguard_guard_table_present": 1})
	s.must("remove")
	if _, _, code := s.cfguard("status", "--metrics-file", status); code != 1 {
		t.Errorf("status of an unprotected origin: exit %d, want 1", code)
	}
	wantProm(t, "status after remove", readProm(t, status), map[string]float64{"cfguard_guard_protected": 0, "cfguard_guard_table_present": 0})

	// Usage: a directory that does not exist is refused before anything runs.
	if _, errOut, code := s.cfguard("status", "--metrics-file", filepath.Join(dir, "nope", "x.prom")); code != 2 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("--metrics-file in a missing directory: exit %d, %q", code, errOut)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("files in the textfile directory: %d, want 2 (no temporary left)", len(ents))
	}
}

func TestMetricsFileVerify(t *testing.T) {
	v := newVerifySite(t)
	file := filepath.Join(t.TempDir(), "cfguard-verify.prom")
	_, errOut, code := v.verify(cfapitest.DefaultToken, "--timeout", "3s", "--metrics-file", file)
	if code != 0 {
		t.Fatalf("verify: exit %d: %s", code, errOut)
	}
	got := readProm(t, file)
	wantProm(t, "verify", got, map[string]float64{
		"cfguard_verify_success": 1,
		"cfguard_paths_failing":  0,
		`cfguard_path_up{hostname="www.example.com",origin="192.0.2.1",port="80",scheme="http",zone="example.com"}`:               1,
		`cfguard_path_predicted_status{hostname="api.example.com",origin="192.0.2.1",port="80",scheme="http",zone="example.com"}`: 200,
	})
	// A refused token: verify could not run (exit 3), and the file says so.
	if _, _, code := v.verify("not-a-valid-token-0000", "--metrics-file", file); code != 3 {
		t.Errorf("refused token: exit %d", code)
	}
	wantProm(t, "refused token", readProm(t, file), map[string]float64{"cfguard_verify_success": 0})
}
