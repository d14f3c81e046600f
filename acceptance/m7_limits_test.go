package acceptance

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// endpoint is one listener of a spec's own gateway, reached over raw connections so
// a spec controls every byte and every connection.
type endpoint struct {
	name, addr, path string      // path answers 200 to anyone
	tls              *tls.Config // nil for the API listener
}

// limitedGateway starts a gateway of the spec's own at work with overrides (ownGateway)
// and returns both its listeners.
func limitedGateway(overrides map[string]any) []endpoint {
	GinkgoHelper()
	fedURL, config, _ := ownGateway(overrides)
	var cfg struct {
		Listen struct{ API string } `json:"listen"`
	}
	b, err := os.ReadFile(config)
	Expect(err).NotTo(HaveOccurred())
	Expect(json.Unmarshal(b, &cfg)).To(Succeed())
	fed := hostPort(fedURL)
	host, _, err := net.SplitHostPort(fed)
	Expect(err).NotTo(HaveOccurred())
	return []endpoint{
		{name: "the API listener", addr: cfg.Listen.API, path: "/healthz"},
		{name: "the federation listener", addr: fed, path: "/api/federation/v1/ca/root",
			tls: &tls.Config{RootCAs: rootPool(site("work").CARoot), ServerName: host, MinVersion: tls.VersionTLS13}},
	}
}

// sourceIP is a loopback address of its own for each connection: the federation
// listener limits what needs no certificate per address, and the limiter's counts are
// shared through work's Valkey with every other spec.
var sourceIPs atomic.Uint32

func sourceIP() string {
	n := sourceIPs.Add(1)
	return fmt.Sprintf("127.%d.%d.%d", 40+GinkgoParallelProcess(), n/250%250, 1+n%250)
}

// dial opens a connection to e from a fresh loopback address, TLS handshake done
// (without a client certificate: these routes need none).
func (e endpoint) dial() net.Conn {
	GinkgoHelper()
	d := net.Dialer{Timeout: Timeouts.Request, LocalAddr: &net.TCPAddr{IP: net.ParseIP(sourceIP())}}
	c, err := d.Dial("tcp", e.addr)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = c.Close() })
	if e.tls == nil {
		return c
	}
	tc := tls.Client(c, e.tls)
	Expect(tc.SetDeadline(time.Now().Add(Timeouts.Request))).To(Succeed())
	Expect(tc.Handshake()).To(Succeed())
	Expect(tc.SetDeadline(time.Time{})).To(Succeed())
	return tc
}

// get sends one keep-alive GET of e.path on c with extra header lines and returns the
// answer's status code.
func (e endpoint) get(c net.Conn, extra string) (int, error) {
	_ = c.SetDeadline(time.Now().Add(Timeouts.Request))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := io.WriteString(c, "GET "+e.path+" HTTP/1.1\r\nHost: "+e.addr+"\r\n"+extra+"\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// closedWithin reports whether the server closes c within wait.
func closedWithin(c net.Conn, wait time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && (!errors.As(err, &ne) || !ne.Timeout())
}

var _ = Describe("Server limits", Label("M7", "security"), func() {
	It("[M7-4] answers 431 to 80 KiB of headers and takes 60 KiB, on both listeners", func() {
		for _, e := range limitedGateway(nil) {
			By(e.name)
			big := func(kib int) string { return "X-Padding: " + strings.Repeat("a", kib<<10) + "\r\n" }
			Expect(e.get(e.dial(), big(60))).To(Equal(http.StatusOK), "60 KiB of headers is within the limit")
			Expect(e.get(e.dial(), big(80))).To(Equal(http.StatusRequestHeaderFieldsTooLarge))
		}
	})

	It("[M7-4] cuts slow headers at the read-header timeout and closes idle connections at the idle timeout, on both listeners", func() {
		const readHeader, idle = time.Second, 3 * time.Second
		for _, e := range limitedGateway(map[string]any{"listen": map[string]any{
			"read_header_timeout": readHeader.String(), "idle_timeout": idle.String()}}) {
			By(e.name + ": headers trickled a byte every 100 ms")
			slow := e.dial()
			began := time.Now()
			_, err := io.WriteString(slow, "GET "+e.path+" HTTP/1.1\r\nHost: x\r\nX-Slow: ")
			Expect(err).NotTo(HaveOccurred())
			done := make(chan struct{})
			go func() {
				defer GinkgoRecover()
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-done:
						return
					case <-tick.C:
						if _, err := io.WriteString(slow, "a"); err != nil {
							return
						}
					}
				}
			}()
			Expect(closedWithin(slow, readHeader+2*time.Second)).To(BeTrue(), "slow headers cut")
			close(done)
			// The server's clock starts at its accept, a moment before ours.
			Expect(time.Since(began)).To(BeNumerically(">=", readHeader-100*time.Millisecond), "not before the read-header timeout")

			By(e.name + ": a kept-alive connection left idle")
			c := e.dial()
			Expect(e.get(c, "")).To(Equal(http.StatusOK))
			began = time.Now()
			Expect(closedWithin(c, idle+2*time.Second)).To(BeTrue(), "idle connection closed")
			Expect(time.Since(began)).To(BeNumerically(">=", idle-100*time.Millisecond),
				"closed by the idle timeout, not the read-header timeout")
		}
	})

	It("[M7-4] with the connection cap at 256, answers a fresh request within 2 s while 512 idle connections are open, on both listeners", func() {
		const maxConns = 256
		// Timeouts far longer than the spec: only the cap may close a connection.
		for _, e := range limitedGateway(map[string]any{"listen": map[string]any{
			"max_conns": maxConns, "read_header_timeout": "2m", "idle_timeout": "2m"}}) {
			By(fmt.Sprintf("%s: %d kept-alive idle connections, each after one request", e.name, 2*maxConns))
			conns := make([]net.Conn, 0, 2*maxConns)
			for range 2 * maxConns {
				c := e.dial()
				Expect(e.get(c, "")).To(Equal(http.StatusOK))
				conns = append(conns, c)
			}
			By(e.name + ": a fresh connection's request")
			began := time.Now()
			Expect(e.get(e.dial(), "")).To(Equal(http.StatusOK))
			Expect(time.Since(began)).To(BeNumerically("<", 2*time.Second))

			By(e.name + ": the oldest were closed to make room, the newest kept")
			for i, c := range conns[:maxConns] {
				Expect(closedWithin(c, 2*time.Second)).To(BeTrue(), "connection %d of the oldest %d still open", i, maxConns)
			}
			Expect(closedWithin(conns[len(conns)-1], 200*time.Millisecond)).To(BeFalse(), "the newest idle connection was closed")
			for _, c := range conns {
				c.Close()
			}
		}
	})
})
