package main

import (
	"bytes"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	var out bytes.Buffer
	clock := time.Unix(0, 0)
	p := &progressLine{w: &out, now: func() time.Time { return clock }}
	p.clear() // nothing drawn yet: nothing to clear
	if out.Len() != 0 {
		t.Fatalf("clear before any update wrote %q", out.String())
	}
	p.update(1, 3) // first: drawn
	p.update(2, 3) // within progressEvery: skipped
	clock = clock.Add(progressEvery)
	p.update(3, 3) // last: always drawn
	p.clear()
	want := "\r\033[Kchecking paths: 1/3\r\033[Kchecking paths: 3/3\r\033[K"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}
