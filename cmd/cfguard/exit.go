package main

import (
	"errors"
	"strings"
)

// Exit codes, documented in the README and in `cfguard --help`.
const (
	exitOK       = 0 // done: the kernel holds the list (changed or already up to date), also when SIGTERM came once the transaction had begun; verify: no path would fail
	exitFailed   = 1 // the operation failed and the firewall and the cache were left exactly as they were (sync, restore, remove); verify: a path would fail; status: not protected, or the last good sync is older than --max-age
	exitUsage    = 2 // a bad flag or argument
	exitCannotGo = 3 // could not run: verify (token refused, API unreachable or oversized, a --hostname in no zone read), a kernel command without CAP_NET_ADMIN
)

// exitError carries an exit code. Its message may be empty when the command
// already said everything it had to say (status: not protected).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func usageErr(err error) error  { return &exitError{exitUsage, err} }
func failed(err error) error    { return &exitError{exitFailed, err} }
func silent(code int) error     { return &exitError{code: code} }
func cannotRun(err error) error { return &exitError{exitCannotGo, err} }

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return exitFailed
}

// oneLine keeps an error to the single line the standards ask for.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
