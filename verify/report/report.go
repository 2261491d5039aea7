// Package report is the data of a verify run: paths, findings and a summary.
// Text and JSON are two renderers of the same values.
package report

import (
	"time"

	"github.com/cfguard/cfguard/verify/probemark"
)

// Stage is where along the way from Cloudflare's edge to the origin a path
// was judged. A path stops at the first stage that fails.
type Stage string

const (
	StageRecord      Stage = "record"      // the DNS record itself (private, reserved, Cloudflare's own)
	StageElsewhere   Stage = "elsewhere"   // the record's address is not this server
	StageRoute       Stage = "route"       // this host's route back toward Cloudflare
	StageFirewall    Stage = "firewall"    // the live nftables ruleset, simulated
	StageListener    Stage = "listener"    // something accepts on address:port
	StageTLS         Stage = "tls"         // the handshake Cloudflare would make
	StageCertificate Stage = "certificate" // the certificate under Full (strict)
	StageHTTP        Stage = "http"        // the answer to GET / with the visitor's Host
	StageUpstream    Stage = "upstream"    // the backend behind the web server
)

// Severity of a finding.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// Outcome is what one stage concluded about one path.
type Outcome struct {
	Stage Stage
	// Fail is true when the stage predicts that the visitor gets Status.
	Fail bool
	// CannotTell is true when the stage could not decide (an expression the
	// firewall simulator does not model, say). The path is not failed on a
	// guess; the reason goes to Warnings.
	CannotTell bool
	Status     int // the predicted code when Fail; the origin's status for a passing http stage
	Cause      string
	Fix        string
	Evidence   []string
	Warnings   []string
	// Sent is the request an http stage sent through the web server (its
	// probemark id and source address), for the upstream stage to read
	// back what the web server logged for it; zero for other stages.
	Sent probemark.Mark
}

// Path is one way a visitor's request travels: entry hostname → origin
// address and port, with the scheme Cloudflare uses toward the origin.
type Path struct {
	Zone       string   `json:"zone"`
	Hostname   string   `json:"hostname"`
	RecordType string   `json:"record_type"`
	OriginIP   string   `json:"origin_ip"`
	Port       int      `json:"port"`
	Scheme     string   `json:"scheme"`
	OK         bool     `json:"ok"`
	Status     int      `json:"status"`
	Stage      Stage    `json:"stage"`
	Cause      string   `json:"cause"`
	Fix        string   `json:"fix"`
	Evidence   []string `json:"evidence"`
	Warnings   []string `json:"warnings"`
	// CertificateNotAfter is when the certificate the origin served
	// expires, where Cloudflare checks it (Full (strict), origin pull).
	CertificateNotAfter *time.Time `json:"certificate_not_after,omitempty"`
	// Edge is what Cloudflare served this hostname lately (edge.go); nil
	// when it was not read.
	Edge *EdgeCounts `json:"edge,omitempty"`
	// Rules names the Configuration, Origin and Page Rules that changed
	// this path (its mode, port, origin, Host header or SNI).
	Rules []string `json:"rules,omitempty"`
}

// Finding is a zone- or host-level observation that is not tied to one path.
type Finding struct {
	Severity Severity `json:"severity"`
	Zone     string   `json:"zone,omitempty"`
	Hostname string   `json:"hostname,omitempty"`
	Message  string   `json:"message"`
	Fix      string   `json:"fix,omitempty"`
}

// Summary counts the paths.
type Summary struct {
	Paths    int            `json:"paths"`
	Failing  int            `json:"failing"`
	ByStatus map[string]int `json:"by_status"` // failing paths per predicted status, "502": 2
	Errors   int            `json:"errors"`    // findings of severity error
	Warnings int            `json:"warnings"`  // findings of severity warning + path warnings
}

// Report is the whole result of a verify run.
type Report struct {
	// SchemaVersion is the version of this JSON contract (docs/json.md);
	// WriteJSON sets it.
	SchemaVersion int       `json:"schema_version"`
	Paths         []Path    `json:"paths"`
	Findings      []Finding `json:"findings"`
	Summary       Summary   `json:"summary"`
}
