package acceptance

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

// shortLived starts a work gateway of the spec's own whose client certificates live
// lifetime, a renewed one's predecessor accepted for overlap, and returns its
// federation URL. It shares work's database and CA, so work's CLI makes its grants.
func shortLived(lifetime, overlap string) string {
	GinkgoHelper()
	fedURL, _, _ := ownGateway(map[string]any{"federation": map[string]any{
		"client_cert_lifetime": lifetime, "renewal_overlap": overlap}})
	return fedURL
}

// certOf pairs an enroll or renew answer with its key.
func certOf(resp api.EnrollResponse, key any) tls.Certificate {
	GinkgoHelper()
	leaf := parsePEMCert(resp.CertificatePEM)
	return tls.Certificate{Certificate: append([][]byte{leaf.Raw}, pemChain(resp.ChainPEM)...), PrivateKey: key, Leaf: leaf}
}

// enrolledAt redeems a grant's token at a federation listener of work's.
func enrolledAt(fedURL string, g api.GrantCreated) tls.Certificate {
	GinkgoHelper()
	key, csr := keyAndCSR(&x509.CertificateRequest{})
	var answer struct {
		api.EnrollResponse
		api.ErrorBody
	}
	status := call(http.MethodPost, fedURL+"/api/federation/v1/enroll", &answer, via(mtlsClient(site("work"), nil)),
		jsonBody(api.EnrollRequest{Token: tokenOf(g.EnrollmentURL), CSRPEM: csr}))
	Expect(status).To(Equal(http.StatusCreated), answer.Error.Code)
	return certOf(answer.EnrollResponse, key)
}

// renewAt renews cert at a federation listener of work's with a new key, on a new
// connection, and returns the status with the new certificate (201) or the error code.
func renewAt(fedURL string, cert tls.Certificate) (int, tls.Certificate, string) {
	GinkgoHelper()
	return renewWith(mtlsClient(site("work"), &cert), fedURL)
}

// renewWith is renewAt on a client of the spec's (a kept-alive connection).
func renewWith(client *http.Client, fedURL string) (int, tls.Certificate, string) {
	GinkgoHelper()
	key, csr := keyAndCSR(&x509.CertificateRequest{})
	resp, err := send(http.MethodPost, fedURL+"/api/federation/v1/renew", via(client), jsonBody(api.RenewRequest{CSRPEM: csr}))
	Expect(err).NotTo(HaveOccurred())
	defer drain(resp)
	var answer struct {
		api.EnrollResponse
		api.ErrorBody
	}
	Expect(json.NewDecoder(resp.Body).Decode(&answer)).To(Succeed())
	if resp.StatusCode != http.StatusCreated {
		return resp.StatusCode, tls.Certificate{}, answer.Error.Code
	}
	return resp.StatusCode, certOf(answer.EnrollResponse, key), ""
}

// drain reads an answer to its end and closes it, so its connection is kept alive.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

// refusedInHandshake is what codeWith answers when no request got through.
const refusedInHandshake = "refused in the TLS handshake"

// codeWith sends a capabilities request on client (a kept-alive connection when the
// client made one before) and returns "ok", the refusal's code, or refusedInHandshake.
func codeWith(client *http.Client, fedURL string) string {
	resp, err := send(http.MethodGet, fedURL+"/api/federation/v1/capabilities", via(client))
	if err != nil {
		if strings.Contains(err.Error(), "certificate") {
			return refusedInHandshake
		}
		return err.Error()
	}
	defer drain(resp)
	if resp.StatusCode == http.StatusOK {
		return "ok"
	}
	var e api.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return e.Error.Code
}

// serialStates is the state of each certificate issued for a grant, by serial.
func serialStates(s world.SiteInfo, grantID string) map[string]string {
	GinkgoHelper()
	rows, err := sqlConn(bgCtx(), s.PostgresURL).Query(bgCtx(), `SELECT serial, state FROM federation_cert_serials WHERE grant_id = $1`, grantID)
	Expect(err).NotTo(HaveOccurred())
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var serial, state string
		Expect(rows.Scan(&serial, &state)).To(Succeed())
		out[serial] = state
	}
	Expect(rows.Err()).NotTo(HaveOccurred())
	return out
}

// atListener is an enrollment URL redeemed at another listener of the same site.
func atListener(enrollmentURL, fedURL string) string {
	GinkgoHelper()
	u, err := url.Parse(enrollmentURL)
	Expect(err).NotTo(HaveOccurred())
	to, err := url.Parse(fedURL)
	Expect(err).NotTo(HaveOccurred())
	u.Host = to.Host
	return u.String()
}

// outboundPeer is a requesting site's outbound peer as peer list --json prints it.
func outboundPeer(s world.SiteInfo, name string) api.Peer {
	GinkgoHelper()
	var all []api.Peer
	cliJSON(s, &all, "federation", "peer", "list", "--json")
	for _, p := range all {
		if p.Direction == "outbound" && p.Name == name {
			return p
		}
	}
	Fail("no outbound peer " + name)
	return api.Peer{}
}

// requestLoop lists a local user's federated source from workers goroutines, each
// pausing every between requests (0: back to back, a load), until stop is called,
// which returns what failed (an error, a non-200, a source not ok); ok counts the
// lists that succeeded so far.
func requestLoop(s world.SiteInfo, token, source string, workers int, every time.Duration) (ok func() int64, stop func() []string) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	var succeeded atomic.Int64
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, time.Now().Format(time.RFC3339Nano)+": "+fmt.Sprintf(format, args...))
	}
	client := &http.Client{Timeout: Timeouts.Request}
	for range workers {
		wg.Add(1)
		go func() {
			defer GinkgoRecover()
			defer wg.Done()
			for {
				select {
				case <-quit:
					return
				case <-time.After(every):
				}
				req, _ := http.NewRequest(http.MethodGet, s.APIURL+"/api/v1/tasks?limit=5&source="+source, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				// Every request goes to the peer, so each one crosses the certificate switch.
				req.Header.Set("Cache-Control", "no-cache")
				resp, err := client.Do(req)
				if err != nil {
					fail("%v", err)
					continue
				}
				var l api.ListOf[map[string]any]
				err = json.NewDecoder(resp.Body).Decode(&l)
				drain(resp)
				switch {
				case err != nil || resp.StatusCode != http.StatusOK:
					fail("%d %v", resp.StatusCode, err)
				case len(l.Sources) != 1 || l.Sources[0].Status != "ok":
					fail("sources %+v", l.Sources)
				default:
					succeeded.Add(1)
				}
			}
		}()
	}
	return succeeded.Load, func() []string {
		close(quit)
		wg.Wait()
		return failures
	}
}
