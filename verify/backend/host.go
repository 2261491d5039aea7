package backend

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cfguard/cfguard/verify/report"
)

// Thresholds for host warnings.
const (
	lowMemoryPercent   = 5    // MemAvailable under this share of MemTotal
	swapUsedPercent    = 80   // swap used over this share
	pressureMemoryWarn = 10.0 // memory "some" avg10, %
	pressureCPUWarn    = 80.0 // cpu "some" avg10, %
	pressureIOWarn     = 40.0 // io "some" avg10, %
	diskFreePercent    = 2    // free space under a temp path
)

// hostState is the host's memory, pressure and disks.
type hostState struct {
	memTotal, memAvail, swapTotal, swapFree uint64 // kB
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
			n, _ := strconv.ParseUint(f[1], 10, 64)
			switch f[0] {
			case "MemTotal:":
				h.memTotal = n
			case "MemAvailable:":
				h.memAvail = n
			case "SwapTotal:":
				h.swapTotal = n
			case "SwapFree:":
				h.swapFree = n
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
	if h.memTotal > 0 && h.memAvail*100 < h.memTotal*lowMemoryPercent {
		out = append(out, report.Finding{Severity: report.SeverityWarning,
			Message: fmt.Sprintf("memory is nearly exhausted: %d MiB available of %d MiB; the OOM killer may end php-fpm or the web server (502s, 521s)", h.memAvail/1024, h.memTotal/1024),
			Fix:     "lower pm.max_children or the application's memory_limit, or add memory"})
	}
	if h.swapTotal > 0 && (h.swapTotal-h.swapFree)*100 > h.swapTotal*swapUsedPercent {
		out = append(out, report.Finding{Severity: report.SeverityWarning,
			Message: fmt.Sprintf("swap is %d%% used (%d of %d MiB): the host is short of memory", (h.swapTotal-h.swapFree)*100/h.swapTotal, (h.swapTotal-h.swapFree)/1024, h.swapTotal/1024)})
	}
	for _, p := range []struct {
		res   string
		limit float64
		what  string
	}{{"memory", pressureMemoryWarn, "waiting for memory"}, {"cpu", pressureCPUWarn, "waiting for a CPU"}, {"io", pressureIOWarn, "waiting for disk I/O"}} {
		if v, ok := h.psi[p.res]; ok && v >= p.limit {
			out = append(out, report.Finding{Severity: report.SeverityWarning,
				Message: fmt.Sprintf("%s pressure: tasks spent %.0f%% of the last 10 s %s; backends answer slowly (504s, 524s)", p.res, v, p.what)})
		}
	}
	return out
}

// diskFindings checks the free space under the web server's temp paths.
func diskFindings(server string, paths []string) []report.Finding {
	var out []report.Finding
	seen := map[uint64]bool{}
	for _, p := range paths {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) != nil || st.Blocks == 0 {
			continue
		}
		if seen[uint64(st.Fsid.Val[0])<<32|uint64(uint32(st.Fsid.Val[1]))] {
			continue
		}
		seen[uint64(st.Fsid.Val[0])<<32|uint64(uint32(st.Fsid.Val[1]))] = true
		if st.Bavail*100 < st.Blocks*diskFreePercent {
			out = append(out, report.Finding{Severity: report.SeverityError,
				Message: fmt.Sprintf("the disk holding %s is full (%d MiB free): %s cannot buffer request or response bodies there (500s, 502s)", p, st.Bavail*uint64(st.Bsize)>>20, server),
				Fix:     "free space on that file system"})
		}
	}
	return out
}
