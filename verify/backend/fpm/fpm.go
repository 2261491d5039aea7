// Package fpm reads PHP-FPM's configuration: the master file, its included
// pool files, each pool's listen address and limits, and the php.ini next
// to it.
package fpm

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Defaults PHP-FPM uses when a setting is absent.
const (
	DefaultListenMode  = "0660"
	DefaultMaxChildren = 5
	DefaultBacklog     = 511
	defaultPrefix      = "/usr"
)

// Pool is one [pool] section.
type Pool struct {
	Name                    string
	File                    string
	Line                    int
	Listen                  string // as written: a socket path, "127.0.0.1:9000", "9000"
	ListenOwner             string // "" when unset: the pool's user
	ListenGroup             string
	ListenMode              string
	ListenACLUsers          string
	ListenACLGroups         string
	ListenBacklog           int
	User, Group             string
	PM                      string
	MaxChildren             int
	RequestTerminateTimeout time.Duration // 0: off
	MaxExecutionTime        time.Duration // php_admin_value / php_value, 0 when unset here
	PingPath, PingResponse  string
	StatusPath              string
	// Slowlog is where FPM writes a stack trace of each request running
	// longer than RequestSlowlogTimeout (0: off), as written (relative to
	// FPM's prefix when not absolute).
	Slowlog               string
	RequestSlowlogTimeout time.Duration
	ErrorLog              string // php_admin_value[error_log]: the application's log
}

// Network and address of the pool's listen setting ("unix", path) or
// ("tcp", host:port).
func (p *Pool) Target() (network, address string) {
	l := p.Listen
	if strings.HasPrefix(l, "/") || strings.HasPrefix(l, "unix:") {
		return "unix", strings.TrimPrefix(l, "unix:")
	}
	if _, err := strconv.Atoi(l); err == nil {
		return "tcp", net.JoinHostPort("127.0.0.1", l)
	}
	if h, port, err := net.SplitHostPort(l); err == nil {
		if h == "" || h == "0.0.0.0" || h == "*" {
			h = "127.0.0.1"
		} else if h == "::" {
			h = "::1"
		}
		return "tcp", net.JoinHostPort(h, port)
	}
	return "unix", l
}

// Config is a php-fpm.conf with its pools.
type Config struct {
	File     string
	ErrorLog string
	Pools    []*Pool
	PHPIni   string        // the php.ini beside it, when it exists
	MaxExec  time.Duration // php.ini max_execution_time, 0 when unknown or 0
	Errors   []string      // pool files that could not be read
}

// Unit is the Debian service name derived from the file's path
// (/etc/php/8.2/fpm/php-fpm.conf → php8.2-fpm), "" when it does not follow
// Debian's layout.
func (c *Config) Unit() string { return UnitFromPath(c.File) }

var debianConf = regexp.MustCompile(`^/etc/php/([0-9.]+)/fpm/`)

// UnitFromPath derives Debian's unit name from an FPM file path.
func UnitFromPath(p string) string {
	if m := debianConf.FindStringSubmatch(p); m != nil {
		return "php" + m[1] + "-fpm"
	}
	return ""
}

// Load reads a php-fpm.conf and the pool files it includes.
func Load(file string) (*Config, error) {
	text, err := readConfig(file)
	if err != nil {
		return nil, err
	}
	c := &Config{File: file}
	if err := c.parse(file, string(text), nil, 0); err != nil {
		return nil, err
	}
	c.finish()
	ini := filepath.Join(filepath.Dir(file), "php.ini")
	if b, err := os.ReadFile(ini); err == nil {
		c.PHPIni = ini
		if v, ok := iniValue(string(b), "max_execution_time"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				c.MaxExec = time.Duration(n) * time.Second
			}
		}
	}
	return c, nil
}

// Parse parses a php-fpm.conf text; includes are read from disk.
func Parse(file, text string) (*Config, error) {
	c := &Config{File: file}
	if err := c.parse(file, text, nil, 0); err != nil {
		return nil, err
	}
	c.finish()
	return c, nil
}

func (c *Config) finish() {
	for _, p := range c.Pools {
		if p.ListenMode == "" {
			p.ListenMode = DefaultListenMode
		}
		if p.MaxChildren == 0 {
			p.MaxChildren = DefaultMaxChildren
		}
		if p.ListenBacklog == 0 {
			p.ListenBacklog = DefaultBacklog
		}
		if p.PingPath != "" && p.PingResponse == "" {
			p.PingResponse = "pong"
		}
	}
}

func iniValue(text, key string) (string, bool) {
	val, found := "", false
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == ';' || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == key {
			val, found = unquote(strings.TrimSpace(v)), true
		}
	}
	return val, found
}

func unquote(v string) string {
	if i := strings.Index(v, " ;"); i >= 0 && !strings.HasPrefix(v, "\"") {
		v = strings.TrimSpace(v[:i])
	}
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		return v[1 : len(v)-1]
	}
	return v
}

const maxIncludeDepth = 8

func (c *Config) parse(file, text string, cur *Pool, depth int) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("%s: includes nested deeper than %d", file, maxIncludeDepth)
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	n := 0
	global := cur == nil
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == ';' || line[0] == '#' {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			name := line[1 : len(line)-1]
			if name == "global" {
				cur, global = nil, true
				continue
			}
			global = false
			cur = nil
			for _, p := range c.Pools {
				if p.Name == name {
					cur = p
				}
			}
			if cur == nil {
				cur = &Pool{Name: name, File: file, Line: n}
				c.Pools = append(c.Pools, cur)
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: expected key = value", file, n)
		}
		k, v = strings.TrimSpace(k), unquote(strings.TrimSpace(v))
		if cur != nil {
			v = strings.ReplaceAll(v, "$pool", cur.Name)
		}
		v = os.Expand(v, func(name string) string {
			if name == "pool" && cur != nil {
				return cur.Name
			}
			return os.Getenv(name)
		})
		if k == "include" {
			pat := v
			if !filepath.IsAbs(pat) {
				pat = filepath.Join(defaultPrefix, pat)
			}
			files, err := filepath.Glob(pat)
			if err != nil {
				return fmt.Errorf("%s:%d: include %s: %w", file, n, v, err)
			}
			sort.Strings(files)
			for _, f := range files {
				b, err := readConfig(f)
				if err != nil {
					c.Errors = append(c.Errors, fmt.Sprintf("%s: %v", f, err))
					continue
				}
				var in *Pool
				if !global {
					in = cur
				}
				if err := c.parse(f, string(b), in, depth+1); err != nil {
					return err
				}
			}
			continue
		}
		if global || cur == nil {
			if k == "error_log" {
				c.ErrorLog = v
			}
			continue
		}
		setPool(cur, k, v)
	}
	return sc.Err()
}

func setPool(p *Pool, k, v string) {
	atoi := func() int { n, _ := strconv.Atoi(v); return n }
	switch k {
	case "listen":
		p.Listen = v
	case "listen.owner":
		p.ListenOwner = v
	case "listen.group":
		p.ListenGroup = v
	case "listen.mode":
		p.ListenMode = v
	case "listen.acl_users":
		p.ListenACLUsers = v
	case "listen.acl_groups":
		p.ListenACLGroups = v
	case "listen.backlog":
		p.ListenBacklog = atoi()
	case "user":
		p.User = v
	case "group":
		p.Group = v
	case "pm":
		p.PM = v
	case "pm.max_children":
		p.MaxChildren = atoi()
	case "request_terminate_timeout":
		p.RequestTerminateTimeout = fpmDuration(v)
	case "ping.path":
		p.PingPath = v
	case "ping.response":
		p.PingResponse = v
	case "pm.status_path":
		p.StatusPath = v
	case "slowlog":
		p.Slowlog = v
	case "request_slowlog_timeout":
		p.RequestSlowlogTimeout = fpmDuration(v)
	case "php_admin_value[max_execution_time]", "php_value[max_execution_time]":
		if n, err := strconv.Atoi(v); err == nil {
			p.MaxExecutionTime = time.Duration(n) * time.Second
		}
	case "php_admin_value[error_log]", "php_value[error_log]":
		p.ErrorLog = v
	}
}

// fpmDuration parses FPM's times: "30", "30s", "2m", "1h", "1d".
func fpmDuration(v string) time.Duration {
	if v == "" {
		return 0
	}
	unit := time.Second
	switch v[len(v)-1] {
	case 's':
		v = v[:len(v)-1]
	case 'm':
		unit, v = time.Minute, v[:len(v)-1]
	case 'h':
		unit, v = time.Hour, v[:len(v)-1]
	case 'd':
		unit, v = 24*time.Hour, v[:len(v)-1]
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return time.Duration(n) * unit
}
