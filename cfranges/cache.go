package cfranges

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"
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
// if missing.
func Save(dir string, l List) error {
	path := filepath.Join(dir, CacheFile)
	if err := Validate(l); err != nil {
		return fmt.Errorf("not saving cache %s: %w", path, err)
	}
	data, err := json.MarshalIndent(cacheJSON{
		Format: cacheFormat, IPv4: l.IPv4, IPv6: l.IPv6, JDCloud: l.JDCloud,
		Etag: l.Etag, FetchedAt: l.FetchedAt.UTC(), Source: l.Source,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("saving cache %s: %w", path, err)
	}
	data = append(data, '\n')
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("saving cache: %w", err)
	}
	if err := writeAtomic(dir, path, data); err != nil {
		return fmt.Errorf("saving cache %s: %w", path, err)
	}
	return nil
}

func writeAtomic(dir, path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, "."+CacheFile+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil // renamed already; the directory sync is best effort
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// Load reads dir/ranges.json. It returns ErrNoCache when there is none, an
// error matching ErrCorruptCache ("cache /var/lib/cfguard/ranges.json is
// corrupt: …") when the file cannot be used, and otherwise a validated List
// with Source=SourceCache. It never returns a partly filled List.
func Load(dir string) (List, error) {
	path := filepath.Join(dir, CacheFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return List{}, fmt.Errorf("%w at %s", ErrNoCache, path)
	}
	if err != nil {
		return List{}, fmt.Errorf("reading cache: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCacheBytes+1))
	if err != nil {
		return List{}, fmt.Errorf("reading cache %s: %w", path, err)
	}
	corrupt := func(format string, args ...any) (List, error) {
		return List{}, fmt.Errorf("cache %s is corrupt: %w", path,
			&corruptError{msg: fmt.Sprintf(format, args...)})
	}
	invalid := func(err error) (List, error) {
		return List{}, fmt.Errorf("cache %s is corrupt: %w", path, &corruptError{msg: err.Error(), err: err})
	}
	if len(data) > maxCacheBytes {
		return corrupt("larger than %d bytes", maxCacheBytes)
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
