package proc

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
)

// MaxLogBytes bounds each service's log file: a runaway child cannot fill the disk.
const MaxLogBytes = 32 << 20

// cappedLog appends to a file until MaxLogBytes, then drops the rest with one marker.
type cappedLog struct {
	mu      sync.Mutex
	f       *os.File
	written int64
	full    bool
}

// OpenLog opens path for appending (a restarted service keeps its earlier lines).
func OpenLog(path string) (io.WriteCloser, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &cappedLog{f: f, written: st.Size()}, nil
}

func (c *cappedLog) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.full {
		return len(b), nil
	}
	if room := MaxLogBytes - c.written; int64(len(b)) > room {
		c.full = true
		_, err := c.f.Write(append(b[:max(room, 0):max(room, 0)], "\n[log truncated: size limit reached]\n"...))
		return len(b), err
	}
	n, err := c.f.Write(b)
	c.written += int64(n)
	return len(b), err
}

func (c *cappedLog) Close() error { return c.f.Close() }

// Tail returns the last n lines of a file (reading at most its last 64 KiB).
func Tail(path string, n int) string { return TailSince(path, 0, n) }

// TailSince is Tail over the part of the file after offset.
func TailSince(path string, offset int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 64 << 10
	if st, err := f.Stat(); err == nil {
		_, _ = f.Seek(max(offset, st.Size()-window), io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(bytes.ToValidUTF8(b, []byte("?"))), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// envAllowlist is what a child inherits from the harness; everything else is explicit.
var envAllowlist = []string{"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TZ"}

// CleanEnv returns the allowlisted variables of the current environment plus extra.
func CleanEnv(extra ...string) []string {
	env := make([]string, 0, len(envAllowlist)+len(extra))
	for _, k := range envAllowlist {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

func logSize(path string) int64 {
	if st, err := os.Stat(path); err == nil {
		return st.Size()
	}
	return 0
}
