package cfranges

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/cfguard/cfguard/internal/statefile"
)

// CacheFile is the name of the last good list inside the state directory.
const CacheFile = "ranges.json"

// cacheFormat is the version written into the file; Load refuses others.
const cacheFormat = 1

// maxCacheBytes caps what Load reads; a real cache is about 1 KiB.
const maxCacheBytes = 1 << 20

// ErrNoCache means there is no cache file yet. It also matches
// os.ErrNotExist.
var ErrNoCache = fmt.Errorf("no cached ranges: %w", fs.ErrNotExist)

// ErrCorruptCache is matched by every error Load returns for a file that
// exists but cannot be used: bad or truncated JSON, an invalid prefix, a
// list that fails Validate, an unknown format.
var ErrCorruptCache = errors.New("corrupt cache")

// cacheJSON is the file's shape. Source is where the list originally came
// from (api or builtin); Load reports SourceCache regardless.
type cacheJSON struct {
	Format    int            `json:"format"`
	IPv4      []netip.Prefix `json:"ipv4_cidrs"`
	IPv6      []netip.Prefix `json:"ipv6_cidrs"`
	JDCloud   []netip.Prefix `json:"jdcloud_cidrs,omitempty"`
	Etag      string         `json:"etag"`
	FetchedAt time.Time      `json:"fetched_at"`
	Source    Source         `json:"source"`
}

// Save writes l as dir/ranges.json atomically: a temp file in dir, fsync,
// rename over the old file, fsync of dir. The file is mode 0644. It refuses
// (and writes nothing) when l does not pass Validate. dir is created (0755)
// if missing. Save is Prepare followed by Commit.
func Save(dir string, l List) error {
	p, err := Prepare(dir, l)
	if err != nil {
		return err
	}
	return p.Commit()
}

// Pending is a cache written in full to a temp file and synced to disk,
// not yet in place. Commit renames it over the cache; Discard deletes it.
// sync prepares the cache before it touches the kernel, so that a full or
// read-only disk is found while nothing has changed yet.
type Pending struct {
	dir, tmp, path string
	done           bool
}

// Prepare validates l and writes it to a synced temp file next to the
// cache (".ranges.json.tmp-*"). On error nothing is left behind.
func Prepare(dir string, l List) (*Pending, error) {
	path := filepath.Join(dir, CacheFile)
	if err := Validate(l); err != nil {
		return nil, fmt.Errorf("not saving cache %s: %w", path, err)
	}
	data, err := json.MarshalIndent(cacheJSON{
		Format: cacheFormat, IPv4: l.IPv4, IPv6: l.IPv6, JDCloud: l.JDCloud,
		Etag: l.Etag, FetchedAt: l.FetchedAt.UTC(), Source: l.Source,
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("saving cache %s: %w", path, err)
	}
	data = append(data, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("saving cache: %w", err)
	}
	if err := statefile.Check(path); err != nil {
		return nil, fmt.Errorf("cache %w", err)
	}
	tmp, err := writeTemp(dir, data)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the temp file's random name says nothing
		}
		return nil, fmt.Errorf("cannot write the cache %s: %w", path, err)
	}
	return &Pending{dir: dir, tmp: tmp, path: path}, nil
}

// Commit renames the temp file over the cache and syncs the directory.
func (p *Pending) Commit() error {
	if p.done {
		return nil
	}
	p.done = true
	if err := os.Rename(p.tmp, p.path); err != nil {
		os.Remove(p.tmp)
		return fmt.Errorf("saving cache %s: %w", p.path, err)
	}
	d, err := os.Open(p.dir)
	if err != nil {
		return nil // renamed already; the directory sync is best effort
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("saving cache %s: syncing directory %s: %w", p.path, p.dir, err)
	}
	return nil
}

// Discard deletes the temp file; the cache stays as it was. It is a no-op
// after Commit.
func (p *Pending) Discard() {
	if p == nil || p.done {
		return
	}
	p.done = true
	os.Remove(p.tmp)
}

// tempPattern names the temp files Prepare writes; CleanStale removes
// those a killed run left behind.
const tempPattern = "." + CacheFile + ".tmp-*"

func writeTemp(dir string, data []byte) (name string, err error) {
	tmp, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o644); err != nil {
		return "", err
	}
	if _, err = tmp.Write(data); err != nil {
		return "", err
	}
	if err = tmp.Sync(); err != nil {
		return "", err
	}
	if err = tmp.Close(); err != nil {
		return "", err
	}
	return tmp.Name(), nil
}

// CleanStale removes the temp files of runs that died before renaming
// them, and returns how many it removed. Call it only under the lock: a
// live run's temp file is indistinguishable from a dead one's. Only
// regular files matching the pattern are touched.
func CleanStale(dir string) (int, error) {
	names, err := filepath.Glob(filepath.Join(dir, tempPattern))
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, name := range names {
		fi, err := os.Lstat(name)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if err := os.Remove(name); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Load reads dir/ranges.json. It returns ErrNoCache when there is none, an
// error matching ErrCorruptCache ("cache /var/lib/cfguard/ranges.json is
// corrupt: …") when the file cannot be used, and otherwise a validated List
// with Source=SourceCache. It never returns a partly filled List.
func Load(dir string) (List, error) {
	path := filepath.Join(dir, CacheFile)
	corrupt := func(format string, args ...any) (List, error) {
		return List{}, fmt.Errorf("cache %s is corrupt: %w", path,
			&corruptError{msg: fmt.Sprintf(format, args...)})
	}
	data, err := statefile.Read(path, maxCacheBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return List{}, fmt.Errorf("%w at %s", ErrNoCache, path)
	}
	var nr *statefile.NotRegularError
	if errors.As(err, &nr) {
		return List{}, fmt.Errorf("cache %w", &corruptError{msg: nr.Error(), err: nr})
	}
	if errors.Is(err, statefile.ErrTooLarge) {
		return corrupt("larger than %d bytes", maxCacheBytes)
	}
	if err != nil {
		return List{}, fmt.Errorf("reading cache %s: %w", path, err)
	}
	invalid := func(err error) (List, error) {
		return List{}, fmt.Errorf("cache %s is corrupt: %w", path, &corruptError{msg: err.Error(), err: err})
	}
	if len(data) == 0 {
		return corrupt("empty file")
	}
	var c cacheJSON
	if err := json.Unmarshal(data, &c); err != nil {
		return corrupt("%s", oneLine(err.Error(), 200))
	}
	if c.Format != cacheFormat {
		return corrupt("format %d, this cfguard reads format %d", c.Format, cacheFormat)
	}
	l := List{IPv4: c.IPv4, IPv6: c.IPv6, JDCloud: c.JDCloud, Etag: c.Etag, FetchedAt: c.FetchedAt, Source: SourceCache}
	if err := Validate(l); err != nil {
		return invalid(err)
	}
	if err := CheckMerged("the cached ranges", l.All()); err != nil {
		return invalid(err)
	}
	return l, nil
}

// corruptError matches ErrCorruptCache and, for a list that fails
// Validate, that PrefixError too.
type corruptError struct {
	msg string
	err error
}

func (e *corruptError) Error() string { return e.msg }
func (e *corruptError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrCorruptCache}
	}
	return []error{ErrCorruptCache, e.err}
}
