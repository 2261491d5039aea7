package main

import (
	"fmt"
	"io"
	"time"
)

// progressEvery is how often the progress line is redrawn at most.
const progressEvery = 100 * time.Millisecond

// progressLine draws "checking paths: 120/2000" on a terminal's stderr and
// clears it when the work is done. It is used only when stderr is a terminal
// and the output is neither JSON nor --quiet, so pipes and logs never see it.
type progressLine struct {
	w    io.Writer
	now  func() time.Time
	last time.Time
	on   bool
}

func (p *progressLine) update(done, total int) {
	t := p.now()
	if done < total && t.Sub(p.last) < progressEvery {
		return
	}
	p.last = t
	fmt.Fprintf(p.w, "\r\033[Kchecking paths: %d/%d", done, total)
	p.on = true
}

// clear removes the line before the report is printed.
func (p *progressLine) clear() {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
		p.on = false
	}
}
