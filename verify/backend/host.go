package backend

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cfguard/cfguard/verify/report"
)

// Thresholds for host findings. A finding is made strictly beyond each.
const (
	lowMemoryPercent   = 5    // MemAvailable under this share of MemTotal
	swapUsedPercent    = 80   // swap used over this share
	pressureMemoryWarn = 10.0 // memory "some" avg10, % (at or over)
	pressureCPUWarn    = 80.0 // cpu "some" avg10, % (at or over)
	pressureIOWarn     = 40.0 // io "some" avg10, % (at or over)
	diskFreePercent    = 2    // free space (or inodes) under a temp path
)

// hostState is the host's memory and pressure, from procfs.
type hostState struct {
	memTotal, memAvail, swapTotal, swapFree uint64 // kB
	hasAvail, hasSwapFree                   bool   // the lines were there (MemAvailable: Linux 3.14+)
	psi                                     map[string]float64
}

func readHost(procRoot string) hostState {
	h := hostState{psi: map[string]float64{}}
	if b, err := os.ReadFile(filepath.Join(procRoot, "meminfo")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			n, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				continue
			}
			switch f[0] {
			case "MemTotal:":
				h.memTotal = n
			case "MemAvailable:":
				h.memAvail, h.hasAvail = n, true
			case "SwapTotal:":
				h.swapTotal = n
			case "SwapFree:":
				h.swapFree, h.hasSwapFree = n, true
			}
		}
	}
	for _, res := range []string{"cpu", "memory", "io"} {
		b, err := os.ReadFile(filepath.Join(procRoot, "pressure", res))
		if err != nil {
			continue
		}
		if v, ok := parsePSI(string(b)); ok {
			h.psi[res] = v
		}
	}
	return h
}

// parsePSI returns the "some avg10" value of a /proc/pressure file.
func parsePSI(s string) (float64, bool) {
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(line, "some ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "avg10="); ok {
				x, err := strconv.ParseFloat(v, 64)
				return x, err == nil
			}
		}
	}
	return 0, false
}

func (h hostState) findings() []report.Finding {
	var out []report.Finding
	if h.memTotal > 0 && h.hasAvail && h.memAvail*100 < h.memTotal*lowMemoryPercent {
		out = append(out, report.Finding{Severity: report.SeverityWarning,
			Message: fmt.Sprintf("memory is nearly exhausted: %d MiB available of %d MiB (%.1f%%); the OOM killer may end php-fpm or the web server (502s, 521s)", h.memAvail/1024, h.memTotal/1024, float64(h.memAvail)*100/float64(h.memTotal)),
			Fix:     "find what holds the memory (ps aux --sort=-rss | head); lower pm.max_children or the application's memory_limit, or add memory"})
	}
	if h.swapTotal > 0 && h.hasSwapFree && h.swapFree <= h.swapTotal && (h.swapTotal-h.swapFree)*100 > h.swapTotal*swapUsedPercent {
		used := h.swapTotal - h.swapFree
		out = append(out, report.Finding{Severity: report.SeverityWarning,
			Message: fmt.Sprintf("swap is %d%% used (%d of %d MiB): the host is short of memory and pages slow down", used*100/h.swapTotal, used/1024, h.swapTotal/1024),
			Fix:     "find what holds the memory (ps aux --sort=-rss | head); lower pm.max_children or the application's memory_limit, or add memory"})
	}
	for _, p := range []struct {
		res   string
		limit float64
		what  string
		fix   string
	}{
		{"memory", pressureMemoryWarn, "waiting for memory", "find what holds the memory (ps aux --sort=-rss | head); lower pm.max_children or memory_limit, or add memory"},
		{"cpu", pressureCPUWarn, "waiting for a CPU", "find what uses the CPU (top); lower pm.max_children if PHP is the load, or add CPUs"},
		{"io", pressureIOWarn, "waiting for disk I/O", "find what uses the disk (iotop, pidstat -d); a swapping host shows here too"},
	} {
		if v, ok := h.psi[p.res]; ok && v >= p.limit {
			out = append(out, report.Finding{Severity: report.SeverityWarning,
				Message: fmt.Sprintf("%s pressure: tasks spent %.1f%% of the last 10 s %s (/proc/pressure/%s some avg10); backends answer slowly (504s, 524s)", p.res, v, p.what, p.res),
				Fix:     p.fix})
		}
	}
	return out
}

// statfsFunc is unix.Statfs (a seam for tests).
type statfsFunc func(path string, st *unix.Statfs_t) error

// diskFindings checks the free space and inodes of the file systems under
// the web server's temp paths. A path that does not exist yet (nginx makes
// its temp directories on demand) is checked at its nearest existing
// parent.
func diskFindings(server string, paths []string, statfs statfsFunc) []report.Finding {
	var out []report.Finding
	seen := map[[2]int32]bool{}
	for _, p := range paths {
		var st unix.Statfs_t
		at := p
		err := statfs(at, &st)
		for errors.Is(err, unix.ENOENT) && at != "/" && at != "." {
			at = filepath.Dir(at)
			err = statfs(at, &st)
		}
		if err != nil || st.Blocks == 0 {
			continue
		}
		if seen[st.Fsid.Val] {
			continue
		}
		seen[st.Fsid.Val] = true
		switch {
		case st.Bavail*100 < st.Blocks*diskFreePercent:
			out = append(out, report.Finding{Severity: report.SeverityError,
				Message: fmt.Sprintf("the disk holding %s is full (%d MiB free of %d MiB): %s cannot buffer request or response bodies there (500s, 502s)", p, st.Bavail*uint64(st.Bsize)>>20, st.Blocks*uint64(st.Bsize)>>20, server),
				Fix:     "free space on that file system (du -xh " + at + " | sort -h | tail; old logs, caches)"})
		case st.Files > 0 && st.Ffree*100 < st.Files*diskFreePercent:
			out = append(out, report.Finding{Severity: report.SeverityError,
				Message: fmt.Sprintf("the file system holding %s is out of inodes (%d free of %d): %s cannot create temp files there (500s, 502s)", p, st.Ffree, st.Files, server),
				Fix:     "delete the many small files on that file system (often old sessions or cache entries)"})
		}
	}
	return out
}
