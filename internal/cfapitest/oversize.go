package cfapitest

import (
	"bytes"
	"net/http"
)

// Oversize is what the stand-in saw while serving an oversized answer.
type Oversize struct {
	Size int64 // bytes the answer would have had
	Sent int64 // bytes written before the client went away (or all)
	// Complete is true when the whole answer was written: the client read
	// (or the kernel buffered) all of it.
	Complete bool
}

type oversizeState struct {
	size int64
	done chan Oversize // receives one Oversize per request served
}

// SetOversize makes GET path (e.g. "/zones") answer 200 with a success
// envelope of size bytes, padded inside a string so that it is valid JSON
// when read to the end, written 64 KiB at a time. Each request served sends
// what happened on the returned channel (buffered for 16 requests).
func (s *Server) SetOversize(path string, size int64) <-chan Oversize {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.oversize == nil {
		s.oversize = map[string]*oversizeState{}
	}
	st := &oversizeState{size: size, done: make(chan Oversize, 16)}
	s.oversize[path] = st
	return st.done
}

// serveOversize answers r if its path was made oversized.
func (s *Server) serveOversize(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	st := s.oversize[r.URL.Path]
	s.mu.Unlock()
	if st == nil {
		return false
	}
	head := `{"success":true,"errors":[],"messages":[],"result":[],"result_info":{"page":1,"per_page":50,"count":0,"total_count":0,"total_pages":1},"pad":"`
	tail := `"}`
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	res := Oversize{Size: st.size}
	write := func(b []byte) bool {
		n, err := w.Write(b)
		res.Sent += int64(n)
		return err == nil
	}
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	ok := write([]byte(head))
	for left := st.size - int64(len(head)+len(tail)); ok && left > 0; {
		n := min(left, int64(len(chunk)))
		ok = write(chunk[:n])
		left -= n
	}
	if ok {
		ok = write([]byte(tail))
	}
	if ok {
		if f, canFlush := w.(http.Flusher); canFlush {
			f.Flush()
		}
	}
	res.Complete = ok && r.Context().Err() == nil && res.Sent == st.size
	select {
	case st.done <- res:
	default:
	}
	return true
}
