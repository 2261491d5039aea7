package backend

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/cfguard/cfguard/verify/backend/logs"
	"github.com/cfguard/cfguard/verify/probemark"
	"github.com/cfguard/cfguard/verify/report"
)

// meminfo is /proc/meminfo as Linux 6.x writes it (abridged), in kB.
func meminfo(total, avail, swapTotal, swapFree uint64) string {
	return fmt.Sprintf(`MemTotal:       %8d kB
MemFree:          183412 kB
MemAvailable:   %8d kB
Buffers:           52100 kB
Cached:           912344 kB
SwapCached:        10240 kB
Active:          2403372 kB
Inactive:         866512 kB
SwapTotal:      %8d kB
SwapFree:       %8d kB
Dirty:               312 kB
Shmem:             21500 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
`, total, avail, swapTotal, swapFree)
}

// psi is a /proc/pressure file ("full" is absent from cpu before 5.13).
func psi(some10 string) string {
	return fmt.Sprintf("some avg10=%s avg60=1.25 avg300=0.40 total=123456789\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=2345\n", some10)
}

// fakeProc writes files (relative path → text) under a fresh ProcRoot.
func fakeProc(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, text := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// brief is the part of a finding the tables compare exactly.
type brief struct {
	Severity report.Severity
	Message  string
}

func briefs(t *testing.T, fs []report.Finding) []brief {
	t.Helper()
	var out []brief
	for _, f := range fs {
		if isRealIPFinding(f) {
			continue // realip_test.go checks those
		}
		if f.Fix == "" {
			t.Errorf("finding without a fix: %q", f.Message)
		}
		out = append(out, brief{f.Severity, f.Message})
	}
	return out
}

const gib4 = 4 * 1024 * 1024 // 4 GiB in kB

func TestHostFindings(t *testing.T) {
	calm := map[string]string{"meminfo": meminfo(gib4, gib4/2, gib4/2, gib4/2), "pressure/cpu": psi("3.10"), "pressure/memory": psi("0.00"), "pressure/io": psi("1.50")}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range calm {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	warn := func(msg string) brief { return brief{report.SeverityWarning, msg} }
	tests := []struct {
		name  string
		files map[string]string
		want  []brief
	}{
		{"all is well", calm, nil},
		{"no procfs files at all", map[string]string{}, nil},
		{"memory at exactly 5% available", with("meminfo", meminfo(4_000_000, 200_000, gib4/2, gib4/2)), nil},
		{"memory under 5% available", with("meminfo", meminfo(gib4, 150*1024, gib4/2, gib4/2)),
			[]brief{warn("memory is nearly exhausted: 150 MiB available of 4096 MiB (3.7%); the OOM killer may end php-fpm or the web server (502s, 521s)")}},
		{"no MemAvailable line (old kernel) is not low memory", with("meminfo", "MemTotal:  4194304 kB\nMemFree:  100 kB\n"), nil},
		{"no swap", with("meminfo", meminfo(gib4, gib4/2, 0, 0)), nil},
		{"swap 80% used", with("meminfo", meminfo(gib4, gib4/2, 1000*1024, 200*1024)), nil},
		{"swap over 80% used", with("meminfo", meminfo(gib4, gib4/2, 1000*1024, 100*1024)),
			[]brief{warn("swap is 90% used (900 of 1000 MiB): the host is short of memory and pages slow down")}},
		{"memory pressure under 10", with("pressure/memory", psi("9.99")), nil},
		{"memory pressure at 10", with("pressure/memory", psi("10.00")),
			[]brief{warn("memory pressure: tasks spent 10.0% of the last 10 s waiting for memory (/proc/pressure/memory some avg10); backends answer slowly (504s, 524s)")}},
		{"cpu pressure under 80", with("pressure/cpu", psi("79.90")), nil},
		{"cpu pressure over 80", with("pressure/cpu", psi("92.47")),
			[]brief{warn("cpu pressure: tasks spent 92.5% of the last 10 s waiting for a CPU (/proc/pressure/cpu some avg10); backends answer slowly (504s, 524s)")}},
		{"io pressure under 40", with("pressure/io", psi("39.00")), nil},
		{"io pressure over 40", with("pressure/io", psi("55.20")),
			[]brief{warn("io pressure: tasks spent 55.2% of the last 10 s waiting for disk I/O (/proc/pressure/io some avg10); backends answer slowly (504s, 524s)")}},
		{"no PSI (kernel without CONFIG_PSI)", with("pressure/cpu", "", "pressure/memory", "", "pressure/io", ""), nil},
		{"everything at once", with("meminfo", meminfo(gib4, 100*1024, 1000*1024, 0), "pressure/memory", psi("35.00"), "pressure/io", psi("60.00")),
			[]brief{
				warn("memory is nearly exhausted: 100 MiB available of 4096 MiB (2.4%); the OOM killer may end php-fpm or the web server (502s, 521s)"),
				warn("swap is 100% used (1000 of 1000 MiB): the host is short of memory and pages slow down"),
				warn("memory pressure: tasks spent 35.0% of the last 10 s waiting for memory (/proc/pressure/memory some avg10); backends answer slowly (504s, 524s)"),
				warn("io pressure: tasks spent 60.0% of the last 10 s waiting for disk I/O (/proc/pressure/io some avg10); backends answer slowly (504s, 524s)"),
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := briefs(t, readHost(fakeProc(t, tt.files)).findings())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// fs is a fake file system for statfs: 4 KiB blocks.
type fs struct {
	id                         int32
	blocks, avail, files, free uint64
}

func fakeStatfs(mounts map[string]fs) statfsFunc {
	return func(path string, st *unix.Statfs_t) error {
		m, ok := mounts[path]
		if !ok {
			return unix.ENOENT
		}
		*st = unix.Statfs_t{Bsize: 4096, Blocks: m.blocks, Bavail: m.avail, Bfree: m.avail, Files: m.files, Ffree: m.free}
		st.Fsid.Val = [2]int32{m.id, 0}
		return nil
	}
}

func TestDiskFindings(t *testing.T) {
	const gib = 1 << 18 // 4 KiB blocks in a GiB
	roomy := fs{id: 1, blocks: 20 * gib, avail: 10 * gib, files: 1_000_000, free: 900_000}
	full := fs{id: 2, blocks: 20 * gib, avail: 100 << 8, files: 1_000_000, free: 900_000} // 100 MiB of 20 GiB
	edge := fs{id: 3, blocks: 100 * gib, avail: 2 * gib, files: 1_000_000, free: 900_000} // exactly 2%
	noInodes := fs{id: 4, blocks: 20 * gib, avail: 10 * gib, files: 1_000_000, free: 1000}
	pseudo := fs{id: 5} // no blocks (a pseudo file system)
	errDisk := func(msg string) brief { return brief{report.SeverityError, msg} }
	tests := []struct {
		name   string
		paths  []string
		mounts map[string]fs
		want   []brief
	}{
		{"all is well", []string{"/var/lib/nginx/body", "/var/lib/nginx/proxy"}, map[string]fs{"/var/lib/nginx/body": roomy, "/var/lib/nginx/proxy": roomy}, nil},
		{"exactly 2% free", []string{"/var/lib/nginx/body"}, map[string]fs{"/var/lib/nginx/body": edge}, nil},
		{"full", []string{"/var/lib/nginx/body"}, map[string]fs{"/var/lib/nginx/body": full},
			[]brief{errDisk("the disk holding /var/lib/nginx/body is full (100 MiB free of 20480 MiB): nginx cannot buffer request or response bodies there (500s, 502s)")}},
		{"one finding per file system", []string{"/var/lib/nginx/body", "/var/lib/nginx/proxy", "/var/lib/nginx/fastcgi"},
			map[string]fs{"/var/lib/nginx/body": full, "/var/lib/nginx/proxy": full, "/var/lib/nginx/fastcgi": roomy},
			[]brief{errDisk("the disk holding /var/lib/nginx/body is full (100 MiB free of 20480 MiB): nginx cannot buffer request or response bodies there (500s, 502s)")}},
		{"a temp path not made yet is checked at its parent", []string{"/var/lib/nginx/body"}, map[string]fs{"/var/lib": full},
			[]brief{errDisk("the disk holding /var/lib/nginx/body is full (100 MiB free of 20480 MiB): nginx cannot buffer request or response bodies there (500s, 502s)")}},
		{"out of inodes", []string{"/var/cache/nginx"}, map[string]fs{"/var/cache/nginx": noInodes},
			[]brief{errDisk("the file system holding /var/cache/nginx is out of inodes (1000 free of 1000000): nginx cannot create temp files there (500s, 502s)")}},
		{"pseudo file system and unreadable paths are skipped", []string{"/proc/x", "relative"}, map[string]fs{"/proc/x": pseudo}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := briefs(t, diskFindings("nginx", tt.paths, fakeStatfs(tt.mounts)))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestOOMFindings(t *testing.T) {
	now := time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)
	kill := func(victim string, n int) logs.Count {
		msg := fmt.Sprintf("Out of memory: Killed process 4242 (%s) total-vm:812344kB, anon-rss:402112kB, file-rss:0kB, shmem-rss:0kB, UID:33 pgtables:1024kB oom_score_adj:0", victim)
		e := logs.Entry{Source: logs.Kernel, Kind: logs.OOMKill, Victim: victim, Time: now.Add(-3 * time.Minute), Message: msg, Line: msg}
		return logs.Count{Source: logs.Kernel, Kind: logs.OOMKill, Victim: victim, N: n, First: e.Time, Last: e.Time, Latest: e}
	}
	other := logs.Count{Source: logs.Nginx, Kind: logs.Refused, Upstream: "unix:/run/php/php8.2-fpm.sock", N: 9}
	warn := func(msg string) brief { return brief{report.SeverityWarning, msg} }
	quote := func(victim string) string {
		return fmt.Sprintf("%q", fmt.Sprintf("Out of memory: Killed process 4242 (%s) total-vm:812344kB, anon-rss:402112kB, file-rss:0kB, shmem-rss:0kB, UID:33 pgtables:1024kB oom_score_adj:0", victim))
	}
	tests := []struct {
		name   string
		counts []logs.Count
		want   []brief
	}{
		{"no OOM kill in the window", []logs.Count{other}, nil},
		{"php-fpm killed", []logs.Count{kill("php-fpm8.2", 3), other},
			[]brief{warn("the kernel's OOM killer killed php-fpm8.2 3 times in the last 15 minutes (nginx / Apache answer 502 while its children are gone); latest: " + quote("php-fpm8.2"))}},
		{"nginx killed", []logs.Count{kill("nginx", 1)},
			[]brief{warn("the kernel's OOM killer killed nginx once in the last 15 minutes (Cloudflare gets refused connections (521) while it is gone); latest: " + quote("nginx"))}},
		{"something else killed", []logs.Count{kill("mysqld", 2)},
			[]brief{warn("the kernel's OOM killer killed mysqld 2 times in the last 15 minutes (its requests fail); latest: " + quote("mysqld"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Analyzer{opts: Options{Since: DefaultSince}, counts: tt.counts}
			if diff := cmp.Diff(tt.want, briefs(t, a.oomFindings())); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// TestAnalyzeFakeProcRoot runs discovery and Analyze with no real process:
// a fake procfs (an nginx master and worker, a php-fpm master under
// systemd, low memory), configuration and log files in a directory, a
// kernel log with an OOM kill, a full disk under nginx's temp path, and a
// fake systemd whose units all run. The pool's socket is gone while its
// master runs.
func TestAnalyzeFakeProcRoot(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "php8.2-fpm.sock") // never created
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(strings.ReplaceAll(text, "DIR", dir), "SOCK", sock)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nginxConf := write("nginx.conf", `worker_processes 1;
error_log DIR/error.log;
events { worker_connections 64; }
http {
    client_body_temp_path DIR/body;
    server {
        listen 127.0.0.1:80;
        server_name example.test;
        root DIR/www;
        location / { try_files $uri $uri/ /index.php?$args; }
        location ~ \.php$ { fastcgi_pass unix:SOCK; fastcgi_read_timeout 30s; }
    }
}
`)
	fpmConf := write("php-fpm.conf", "[global]\nerror_log = DIR/fpm.log\n\n[www]\nuser = www-data\ngroup = www-data\nlisten = SOCK\npm = dynamic\npm.max_children = 5\n")
	at := time.Now().Add(-2 * time.Minute)
	write("error.log", at.Format("2006/01/02 15:04:05")+` [crit] 1234#1234: *7 connect() to unix:SOCK failed (2: No such file or directory) while connecting to upstream, client: 192.0.2.9, server: example.test, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:SOCK:", host: "example.test"`+"\n")
	write("fpm.log", "")

	status := func(name string, ppid, uid int) string {
		return fmt.Sprintf("Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t1\nPPid:\t%d\nUid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\nGroups:\t%d\n", name, ppid, uid, uid, uid, uid, uid, uid, uid, uid, uid)
	}
	root := fakeProc(t, map[string]string{
		"1/status": status("systemd", 0, 0), "1/cmdline": "/sbin/init\x00", "1/comm": "systemd\n",
		"100/status": status("nginx", 1, 0), "100/cmdline": "nginx: master process /usr/sbin/nginx -c " + nginxConf + "\x00", "100/cgroup": "0::/system.slice/nginx.service\n",
		"101/status": status("nginx", 100, 33), "101/cmdline": "nginx: worker process\x00", "101/cgroup": "0::/system.slice/nginx.service\n",
		"200/status": status("php-fpm8.2", 1, 0), "200/cmdline": "php-fpm: master process (" + fpmConf + ")\x00", "200/cgroup": "0::/system.slice/php8.2-fpm.service\n",
		"meminfo": meminfo(gib4, 100*1024, 0, 0),
	})
	oom := fmt.Sprintf(`{"MESSAGE":"Out of memory: Killed process 4242 (php-fpm8.2) total-vm:812344kB, anon-rss:402112kB, file-rss:0kB, shmem-rss:0kB, UID:33 pgtables:1024kB oom_score_adj:0","__REALTIME_TIMESTAMP":"%d"}`, at.UnixMicro())
	sys := system{
		readKernel: func(context.Context, time.Time) ([]logs.Entry, string, error) {
			return logs.ParseJournal([]byte(oom + "\n")), "journalctl -k", nil
		},
		fpmConfGlob: filepath.Join(dir, "none", "*.conf"),
		nginxDump: func(context.Context, string, ...string) ([]byte, error) {
			return nil, fmt.Errorf("no nginx binary in this test")
		},
		statfs: fakeStatfs(map[string]fs{dir: {id: 9, blocks: 1 << 20, avail: 256, files: 1000, free: 900}}),
	}
	sd := &fakeSystemctl{t: t, units: map[string]string{"php8.2-fpm.service": showRunning, "nginx.service": with(showRunning, "Id", "nginx.service")}}
	sys.booted, sys.showUnits = func() bool { return true }, sd.show

	a, findings, err := discover(context.Background(), Options{ProcRoot: root, Timeout: time.Second}, sys)
	if err != nil {
		t.Fatal(err)
	}
	wantFindings := []brief{
		{report.SeverityWarning, "memory is nearly exhausted: 100 MiB available of 4096 MiB (2.4%); the OOM killer may end php-fpm or the web server (502s, 521s)"},
		{report.SeverityWarning, "the kernel's OOM killer killed php-fpm8.2 once in the last 15 minutes (nginx / Apache answer 502 while its children are gone); latest: \"Out of memory: Killed process 4242 (php-fpm8.2) total-vm:812344kB, anon-rss:402112kB, file-rss:0kB, shmem-rss:0kB, UID:33 pgtables:1024kB oom_score_adj:0\""},
		{report.SeverityError, "the disk holding " + dir + "/body is full (1 MiB free of 4096 MiB): nginx cannot buffer request or response bodies there (500s, 502s)"},
	}
	if diff := cmp.Diff(wantFindings, briefs(t, findings)); diff != "" {
		t.Errorf("findings (-want +got)\n%s", diff)
	}

	out := a.Analyze(context.Background(), loopback, 80, testHost, "http", 502, probemark.Mark{})
	t.Logf("cause: %s\nfix: %s\nevidence: %q\nwarnings: %q", out.Cause, out.Fix, out.Evidence, out.Warnings)
	if diff := cmp.Diff(report.Outcome{Stage: report.StageUpstream, Fail: true, Status: 502}, report.Outcome{Stage: out.Stage, Fail: out.Fail, Status: out.Status}); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	for _, w := range []string{sock + " does not exist although php-fpm (pid 200) runs pool www for it: the socket file was removed",
		"nginx logged 'connect() to unix:" + sock + " failed (2: No such file or directory) while connecting to upstream' once in the last 15 minutes"} {
		if !strings.Contains(out.Cause, w) {
			t.Errorf("cause %q lacks %q", out.Cause, w)
		}
	}
	if out.Fix != "systemctl restart php8.2-fpm" {
		t.Errorf("fix = %q, want systemctl restart php8.2-fpm (the unit from the master's cgroup)", out.Fix)
	}
	if diff := cmp.Diff([][]string{{"nginx.service", "php8.2-fpm.service"}}, sd.calls); diff != "" {
		t.Errorf("systemctl show calls (-want +got)\n%s", diff)
	}
	if !strings.Contains(strings.Join(out.Warnings, "\n"), "the OOM killer killed php-fpm8.2 once in the last 15 minutes") {
		t.Errorf("no OOM warning on the path: %q", out.Warnings)
	}
}
