// Package watch is `cfguard watch`, the origin's own monitor: every
// interval it probes each backend the web servers pass "/" to (through
// verify/backend, the same probes as verify), the web servers' listeners
// (verify/probe), the error logs and the kernel log as they are written
// (verify/backend/logs' classifier) and the guard (internal/guard); with a
// token it runs the full verify every few minutes. It keeps state between
// checks: a backend down twice in a row, or hung (timing out or saturated)
// three times in a row, becomes a recovery.Request to the Recoverer when
// recovery is allowed; a guard table that vanished is put back from the
// cache at once. Everything it sees is rendered as metrics and, on a change,
// as one log line.
package watch
