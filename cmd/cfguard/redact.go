package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
)

// redacted stands where the API token would have been printed.
const redacted = "[api-token]"

// redactErr hides the token in err's message, should an answer of the API
// (or a proxy in front of it) ever echo it back; the exit code is kept.
func redactErr(err error, token string) error {
	if err == nil || token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	msg := errors.New(strings.ReplaceAll(err.Error(), token, redacted))
	if code := exitCode(err); code != exitFailed {
		return &exitError{code: code, err: msg}
	}
	return msg
}

// redactWriter hides the token in what is written through it. The
// renderers write a whole report in one Write, so a token is never split
// between two.
type redactWriter struct {
	w     io.Writer
	token []byte
}

func redactingWriter(w io.Writer, token string) io.Writer {
	if token == "" {
		return w
	}
	return &redactWriter{w: w, token: []byte(token)}
}

func (r *redactWriter) Write(p []byte) (int, error) {
	if !bytes.Contains(p, r.token) {
		return r.w.Write(p)
	}
	if _, err := r.w.Write(bytes.ReplaceAll(p, r.token, []byte(redacted))); err != nil {
		return 0, err
	}
	return len(p), nil
}
