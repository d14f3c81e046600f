package httpx

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// listener is a Server under test: dial opens a raw connection (TLS when it is one).
type listener struct {
	addr   string
	cap    *ConnCap
	tlsCfg *tls.Config // the client's; nil for plain HTTP
}

func start(t *testing.T, lim Limits, useTLS bool, h http.Handler) *listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, lim, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l := &listener{addr: ln.Addr().String(), cap: srv.Cap}
	if useTLS {
		cert, pool := selfSigned(t)
		srv.HTTP.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
		l.tlsCfg = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return l
}

func (l *listener) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", l.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if l.tlsCfg == nil {
		return c
	}
	tc := tls.Client(c, l.tlsCfg)
	_ = tc.SetDeadline(time.Now().Add(2 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	_ = tc.SetDeadline(time.Time{})
	return tc
}

// get sends one keep-alive request on c and reads its answer's status line.
func get(c net.Conn, extra string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"+extra+"\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Status, nil
}

// closedByServer reports whether the server has closed c, waiting at most wait.
func closedByServer(c net.Conn, wait time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && (!errors.As(err, &ne) || !ne.Timeout())
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })

// long are limits whose timeouts never fire during a test: only the cap closes.
func long(maxConns int) Limits {
	return Limits{MaxConns: maxConns, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute}
}

func TestCapClosesTheOldestIdleConnection(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tls     bool
		request bool // kept alive after one request, or open with none sent
	}{
		{"plain, kept alive", false, true},
		{"plain, nothing sent", false, false},
		{"tls, kept alive", true, true},
		{"tls, nothing sent", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const max = 4
			l := start(t, long(max), tc.tls, ok)
			var conns []net.Conn
			for range 2 * max {
				c := l.dial(t)
				if tc.request {
					if status, err := get(c, ""); err != nil || status != "200 OK" {
						t.Fatalf("idle connection's request: %q, %v", status, err)
					}
					// The client has its answer before the server marks the
					// connection idle: wait for that, so "oldest idle" is the order
					// the connections were made in.
					waitFor(t, func() bool { return l.cap.idleCount() == l.cap.Open() })
				}
				conns = append(conns, c)
			}
			began := time.Now()
			if status, err := get(l.dial(t), ""); err != nil || status != "200 OK" {
				t.Fatalf("fresh request with %d idle connections: %q, %v", 2*max, status, err)
			}
			if d := time.Since(began); d > 2*time.Second {
				t.Fatalf("fresh request took %v", d)
			}
			for i, c := range conns[:max+1] {
				if !closedByServer(c, 2*time.Second) {
					t.Errorf("connection %d (of the oldest) still open", i)
				}
			}
			if closedByServer(conns[len(conns)-1], 100*time.Millisecond) {
				t.Error("the newest idle connection was closed")
			}
			if n := l.cap.Open(); n > max {
				t.Errorf("%d connections open, cap %d", n, max)
			}
		})
	}
}

func TestCapWaitsWhileEverySlotIsBusy(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[useTLS], func(t *testing.T) {
			release := make(chan struct{})
			busy := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				<-release
				_, _ = io.WriteString(w, "ok")
			})
			l := start(t, long(2), useTLS, busy)
			results := make(chan error, 3)
			for range 2 {
				c := l.dial(t)
				go func() { _, err := get(c, ""); results <- err }()
			}
			// Both slots busy: a third connection is accepted by the kernel but not
			// served, and no busy connection is closed to make room.
			for deadline := time.Now().Add(5 * time.Second); l.cap.Open() < 2 || l.cap.busy() < 2; {
				if time.Now().After(deadline) {
					close(release)
					t.Fatalf("%d connections open, %d busy; want 2 busy", l.cap.Open(), l.cap.busy())
				}
				time.Sleep(time.Millisecond)
			}
			third := make(chan string, 1)
			go func() {
				c, err := net.DialTimeout("tcp", l.addr, 2*time.Second)
				if err != nil {
					third <- err.Error()
					return
				}
				defer c.Close()
				if l.tlsCfg != nil {
					c = tls.Client(c, l.tlsCfg)
				}
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
					third <- err.Error()
					return
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					third <- err.Error()
					return
				}
				resp.Body.Close()
				third <- resp.Status
			}()
			select {
			case s := <-third:
				t.Fatalf("third connection answered while both slots were busy: %s", s)
			case <-time.After(200 * time.Millisecond):
			}
			close(release)
			for range 2 {
				if err := <-results; err != nil {
					t.Errorf("busy request: %v", err)
				}
			}
			if s := <-third; s != "200 OK" {
				t.Errorf("third connection after a slot freed: %s", s)
			}
		})
	}
}

func TestHeaderLimit(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		l := start(t, long(8), useTLS, ok)
		for _, tc := range []struct {
			size int
			want string
		}{{60 << 10, "200 OK"}, {80 << 10, "431 Request Header Fields Too Large"}} {
			status, err := get(l.dial(t), "X-Big: "+strings.Repeat("a", tc.size)+"\r\n")
			if err != nil || status != tc.want {
				t.Errorf("tls %v, %d KiB of headers: %q, %v; want %q", useTLS, tc.size>>10, status, err, tc.want)
			}
		}
	}
}

func TestTimeouts(t *testing.T) {
	lim := Limits{MaxConns: 8, ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 600 * time.Millisecond}
	l := start(t, lim, false, ok)

	// The server's read-header deadline runs from when it begins reading the request,
	// after the connection was accepted: the clock starts before the dial, so it can
	// never start after the server's.
	began := time.Now()
	slow := l.dial(t)
	go func() { // a header byte every 50 ms: never idle, never done
		for range 40 {
			if _, err := io.WriteString(slow, "X"); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	_, _ = io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	if !closedByServer(slow, 2*time.Second) {
		t.Fatal("slow headers not cut")
	}
	if d := time.Since(began); d < lim.ReadHeaderTimeout {
		t.Errorf("slow headers cut after %v, before the read-header timeout", d)
	}

	idle := l.dial(t)
	if status, err := get(idle, ""); err != nil || status != "200 OK" {
		t.Fatal(status, err)
	}
	began = time.Now()
	if !closedByServer(idle, 3*time.Second) {
		t.Fatal("idle connection not closed")
	}
	if d := time.Since(began); d < lim.IdleTimeout-50*time.Millisecond {
		t.Errorf("idle connection closed after %v, before the idle timeout", d)
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// busy is how many connections have a request in flight.
func (c *ConnCap) busy() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.conns {
		if e == nil {
			n++
		}
	}
	return n
}

// waitFor polls cond for up to 2 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the server's view of the connections")
		}
	}
}
