package main

import (
	"bytes"
	"io"
)

// quietLimit bounds what --quiet holds back until the command's end.
const quietLimit = 256 << 10

// quietOutput holds back what a command prints under --quiet: it is dropped
// when the command succeeds (cron mails nothing) and printed when it fails,
// so that a failure still explains itself.
type quietOutput struct {
	buf       bytes.Buffer
	truncated bool
}

func (q *quietOutput) Write(p []byte) (int, error) {
	if room := quietLimit - q.buf.Len(); room < len(p) {
		q.truncated = true
		if room > 0 {
			q.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return q.buf.Write(p)
}

// finish prints what was held back when the command failed.
func (q *quietOutput) finish(w io.Writer, code int) {
	if code == exitOK || q.buf.Len() == 0 {
		return
	}
	w.Write(q.buf.Bytes())
	if q.truncated {
		io.WriteString(w, "(output cut at 256 KiB)\n")
	}
}

// finishQuiet is main's last step: see quietOutput.
func finishQuiet(g *globals, err error) {
	if g != nil && g.quiet != nil {
		g.quiet.finish(g.realStdout, exitCode(err))
	}
}
