// Package backend looks behind the web server for verify: it finds the
// running nginx / Apache and PHP-FPM, maps a path (address, port, Host) to
// the server block and location "/" the web server would pick, follows it to
// its backend (fastcgi_pass, proxy_pass, upstream{}, Apache ProxyPass,
// SetHandler proxy:…), probes that backend the way the web server would, and
// reads the recent error logs, kernel log and host pressure for evidence.
// When systemd is the service manager (/run/systemd/system exists) it also
// reads the state of the web server's and backends' units with `systemctl
// show` (failed and why, restarting over and over, disabled, masked, not
// installed), so a cause says what happened and the fix names the real
// unit; without systemd nothing is asked and fixes say `service X start`.
//
// A path whose backend is the culprit comes back as a failing
// report.Outcome with Stage upstream; a passing path collects warnings
// (pool saturated recently, backend close to its timeout, OOM kills, a web
// server that waits longer than Cloudflare).
package backend
