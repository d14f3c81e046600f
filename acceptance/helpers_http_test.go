package acceptance

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

// request is what the options of call add to one request.
type request struct {
	client      *http.Client
	token       string
	body        io.Reader
	contentType string
	header      http.Header
}

// An option adds to a request of call.
type option func(*request)

// bearer sends an API token; an empty token sends none (specs send none on purpose).
func bearer(token string) option { return func(r *request) { r.token = token } }

// jsonBody sends v encoded as JSON; a nil v sends no body at all.
func jsonBody(v any) option {
	GinkgoHelper()
	if v == nil {
		return func(*request) {}
	}
	b, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return func(r *request) { r.body, r.contentType = bytes.NewReader(b), "application/json" }
}

// rawBody sends r as it is, with no content type: malformed JSON, or a reader whose
// length net/http does not know (sent chunked).
func rawBody(body io.Reader) option { return func(r *request) { r.body = body } }

// header adds a request header (a traceparent, say).
func header(name, value string) option {
	return func(r *request) {
		if r.header == nil {
			r.header = http.Header{}
		}
		r.header.Set(name, value)
	}
}

// via sends on client: one that trusts a site's CA, or presents a client certificate
// (mtlsClient).
func via(client *http.Client) option { return func(r *request) { r.client = client } }

// send builds a request from opts and sends it; without via it goes through a plain
// client bounded by Timeouts.Request.
func send(method, url string, opts ...option) (*http.Response, error) {
	GinkgoHelper()
	r := request{client: &http.Client{Timeout: Timeouts.Request}}
	for _, o := range opts {
		o(&r)
	}
	req, err := http.NewRequest(method, url, r.body)
	Expect(err).NotTo(HaveOccurred())
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	return r.client.Do(req)
}

// call sends one request (see the options above) and returns the status code. It
// decodes a JSON answer into out, a gateway/api type; a nil out discards the body and a
// *[]byte takes the body as it is (metrics, PEM).
func call(method, url string, out any, opts ...option) int {
	GinkgoHelper()
	resp, err := send(method, url, opts...)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	switch out := out.(type) {
	case nil:
		// Read to the end, so the connection is kept alive for the next request.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	case *[]byte:
		*out, err = io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
	default:
		Expect(json.NewDecoder(resp.Body).Decode(out)).To(Succeed())
	}
	return resp.StatusCode
}

// callError sends a request that the other side should refuse before answering (a
// handshake, say) and returns the transport's error: nil when an answer came.
func callError(method, url string, opts ...option) error {
	GinkgoHelper()
	resp, err := send(method, url, opts...)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// readyz is the status of a gateway's /readyz, 0 while nothing answers: for polling.
func readyz(apiURL string) int {
	GinkgoHelper()
	resp, err := send(http.MethodGet, apiURL+"/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// mtlsClient trusts a site's CA root and nothing else, and presents cert when it is
// not nil — whatever CAs the server names (Go's client would otherwise hold back a
// certificate the server's CA list does not cover). Without a certificate it is the
// client for the site's step-ca and for enrollment.
func mtlsClient(s world.SiteInfo, cert *tls.Certificate) *http.Client {
	GinkgoHelper()
	cfg := &tls.Config{RootCAs: rootPool(s.CARoot)}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Timeout: Timeouts.Request, Transport: newSiteTransport(s, cfg)}
}

// listenerTLS is cfg for a connection to site s's own federation listener at its
// address (FederationURL): verified, by crypto/tls as any other, under the name the
// listener's certificate carries, the host of public_url, the inbound link's address
// (SPEC §6a). On the process backend both are 127.0.0.1; on docker the link proxy has
// an address of its own.
func listenerTLS(s world.SiteInfo, cfg *tls.Config) *tls.Config {
	if public := hostname(s.PublicURL); public != "" {
		cfg.ServerName = public
	}
	return cfg
}

// siteTransport sends requests for site s's own federation listener with
// listenerTLS(s, cfg) and every other request with cfg (verified under the host
// dialled): one client serves a site's listener, its step-ca and other listeners.
type siteTransport struct {
	listener string // FederationURL's host
	named    *http.Transport
	plain    *http.Transport
}

func newSiteTransport(s world.SiteInfo, cfg *tls.Config) http.RoundTripper {
	direct, public := hostname(s.FederationURL), hostname(s.PublicURL)
	if public == "" || direct == public {
		return &http.Transport{TLSClientConfig: cfg}
	}
	return &siteTransport{listener: direct, plain: &http.Transport{TLSClientConfig: cfg},
		named: &http.Transport{TLSClientConfig: listenerTLS(s, cfg.Clone())}}
}

func (t *siteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Hostname() == t.listener {
		return t.named.RoundTrip(req)
	}
	return t.plain.RoundTrip(req)
}

// withDial is the transport with its connections dialled by dial.
func withDial(rt http.RoundTripper, dial func(ctx context.Context, network, addr string) (net.Conn, error)) http.RoundTripper {
	switch t := rt.(type) {
	case *http.Transport:
		c := t.Clone()
		c.DialContext = dial
		return c
	case *siteTransport:
		c := *t
		c.named, c.plain = withDial(t.named, dial).(*http.Transport), withDial(t.plain, dial).(*http.Transport)
		return &c
	}
	panic(fmt.Sprintf("withDial: a transport of type %T", rt))
}

// hostname is a URL's host without its port ("" when it does not parse).
func hostname(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// itemOf is the row of a local or federated get: an object of the resource's fields.
func itemOf(r api.ItemResponse) map[string]any {
	GinkgoHelper()
	item, ok := r.Item.(map[string]any)
	Expect(ok).To(BeTrue(), "the item is not an object: %v", r.Item)
	return item
}

// listAll pages through a local API resource with the given page size.
func listAll(base, token, resource string, limit int) []map[string]any {
	GinkgoHelper()
	var all []map[string]any
	cursor := ""
	for range 1000 {
		var page api.ListOf[map[string]any]
		sep := "?"
		if strings.Contains(resource, "?") {
			sep = "&"
		}
		url := fmt.Sprintf("%s/api/v1/%s%slimit=%d&cursor=%s", base, resource, sep, limit, cursor)
		Expect(call(http.MethodGet, url, &page, bearer(token))).To(Equal(http.StatusOK))
		Expect(len(page.Items)).To(BeNumerically("<=", limit))
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all
		}
		cursor = page.NextCursor
	}
	Fail("paging did not end")
	return nil
}

// idsOf are the ids of listed items, in order.
func idsOf(items []map[string]any) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it["id"].(string)
	}
	return ids
}
