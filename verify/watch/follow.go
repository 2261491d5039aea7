package watch

import (
	"bytes"
	"errors"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cfguard/cfguard/verify/backend"
	"github.com/cfguard/cfguard/verify/backend/logs"
)

// Bounds of following.
const (
	// MaxReadPerRound bounds what one round reads of one log file; a file
	// that grew more is skipped to its end (and the skip is counted).
	MaxReadPerRound = 1 << 20
	// MaxLine bounds one line kept across rounds.
	MaxLine = 64 << 10
	// MaxKernelRecords bounds the kernel records read in one round.
	MaxKernelRecords = 4096
)

// FileFollower follows error logs from their end when it was made, like
// `tail -F`: a file that is replaced (logrotate) is read from its start
// once the old one is finished, one truncated in place (copytruncate) from
// its start when it is seen shorter than what was read, and one that does
// not exist yet is looked for every round.
type FileFollower struct {
	files []*followed
}

type followed struct {
	src     logs.Source
	path    string
	f       *os.File
	ino     uint64
	off     int64
	partial []byte
	started bool // the first open seeks to the end; later ones read all
	held    []logs.Entry
	Skipped int64
}

// FollowFiles starts following files from their current end.
func FollowFiles(files []backend.LogFile) *FileFollower {
	ff := &FileFollower{}
	for _, f := range files {
		x := &followed{src: f.Source, path: f.Path}
		x.open()
		x.started = true
		ff.files = append(ff.files, x)
	}
	return ff
}

func (x *followed) open() {
	f, err := os.Open(x.path)
	if err != nil {
		return
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		f.Close()
		return
	}
	x.f, x.ino, x.off, x.partial = f, st.Ino, 0, nil
	if !x.started {
		x.off = st.Size
	}
}

// Read returns the classified lines written since the last call.
func (ff *FileFollower) Read() []logs.Entry {
	var out []logs.Entry
	for _, x := range ff.files {
		out = append(out, x.read()...)
	}
	return out
}

func (x *followed) read() []logs.Entry {
	var out []logs.Entry
	if x.f != nil {
		// Replaced (rotated) or truncated: finish the old file, then take the new one from its start.
		var st syscall.Stat_t
		rotated := syscall.Stat(x.path, &st) != nil || st.Ino != x.ino
		if fi, err := x.f.Stat(); err == nil && fi.Size() < x.off {
			x.off, x.partial = 0, nil // truncated in place (copytruncate)
		}
		out = x.drain()
		if rotated {
			x.f.Close()
			x.f = nil
		}
	}
	if x.f == nil {
		x.open()
		if x.f != nil {
			out = append(out, x.drain()...)
		}
	}
	return out
}

func (x *followed) drain() []logs.Entry {
	fi, err := x.f.Stat()
	if err != nil {
		return nil
	}
	if grown := fi.Size() - x.off; grown > MaxReadPerRound {
		x.Skipped += grown - MaxReadPerRound
		x.off = fi.Size() - MaxReadPerRound
		x.partial = nil
	}
	b, err := io.ReadAll(io.NewSectionReader(x.f, x.off, MaxReadPerRound))
	if err != nil && len(b) == 0 {
		return nil
	}
	x.off += int64(len(b))
	data := append(x.partial, b...)
	var out []logs.Entry
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if e, ok := logs.Classify(x.src, string(data[:i])); ok {
			out = append(out, e)
		}
		data = data[i+1:]
	}
	if len(data) > MaxLine {
		data = nil
	}
	x.partial = append([]byte(nil), data...)
	return x.markThreads(out)
}

// Close closes the files.
func (ff *FileFollower) Close() error {
	for _, x := range ff.files {
		if x.f != nil {
			x.f.Close()
			x.f = nil
		}
	}
	return nil
}

// KernelFollower reads /dev/kmsg without blocking from the record after
// the last one when it was opened: OOM kills as they happen.
type KernelFollower struct {
	fd  int // raw: an *os.File's Fd() would make it blocking
	now func() time.Time
}

// FollowKernel opens path (/dev/kmsg) at its end.
func FollowKernel(path string) (*KernelFollower, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if _, err := unix.Seek(fd, 0, io.SeekEnd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &KernelFollower{fd: fd, now: time.Now}, nil
}

// Read returns the OOM and other kernel records classified since the last
// call, at most MaxKernelRecords.
func (k *KernelFollower) Read() []logs.Entry {
	var out []logs.Entry
	if k.fd < 0 {
		return nil
	}
	buf := make([]byte, 8192)
	for range MaxKernelRecords {
		n, err := unix.Read(k.fd, buf)
		if errors.Is(err, unix.EPIPE) {
			continue // records were overwritten before we read them
		}
		if err != nil || n <= 0 {
			break // EAGAIN: nothing more now
		}
		if e, ok := logs.ParseKmsg(string(buf[:n]), time.Time{}); ok {
			e.Time = k.now()
			out = append(out, e)
		}
	}
	return out
}

// Close closes /dev/kmsg.
func (k *KernelFollower) Close() error {
	if k.fd < 0 {
		return nil
	}
	err := unix.Close(k.fd)
	k.fd = -1
	return err
}

// markThreads gives Apache's lines that name no request the request of the
// next line on their thread (logs.MarkThreads). Such a line at the end of
// what a round read is held back one round, for its request line may be
// written just after the read.
func (x *followed) markThreads(es []logs.Entry) []logs.Entry {
	held := len(x.held)
	es = append(x.held, es...)
	x.held = nil
	logs.MarkThreads(es)
	out := es[:0:0]
	for i, e := range es {
		if i >= held && e.Source == logs.Apache && e.Thread != "" && e.Client == "" && e.Probe == "" {
			x.held = append(x.held, e)
			continue
		}
		out = append(out, e)
	}
	return out
}
