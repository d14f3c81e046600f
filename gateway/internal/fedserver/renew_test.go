package fedserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/caclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/identity"
)

// fakeCA issues a certificate of serial 777 for the CSR's key, or fails.
type fakeCA struct {
	err      error
	issued   []time.Time // the notAfter of each issuance asked for
	revoked  []string
	issuedID identity.Identity
}

func (c *fakeCA) IssueFederation(_ context.Context, csrPEM []byte, id identity.Identity, notAfter time.Time) (*caclient.Signed, error) {
	c.issued, c.issuedID = append(c.issued, notAfter), id
	if c.err != nil {
		return nil, c.err
	}
	block, _ := pem.Decode(csrPEM)
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	return &caclient.Signed{Leaf: certFor(csr.PublicKey, 777, notAfter)}, nil
}

func (c *fakeCA) Revoke(_ context.Context, serial string, _ caclient.ReasonCode, _ string) error {
	c.revoked = append(c.revoked, serial)
	return nil
}

// certFor is a certificate of serial for pub (self-signed by a throwaway key).
func certFor(pub any, serial int64, notAfter time.Time) *x509.Certificate {
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(serial), NotAfter: notAfter},
		&x509.Certificate{SerialNumber: big.NewInt(1)}, pub, signer)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// fakeRenewals records the renewal, or fails.
type fakeRenewals struct {
	err       error
	unclaimed string
	presented []string
}

func (f *fakeRenewals) Renew(_ context.Context, _, presented, _ string, _ time.Time, _ time.Duration) (fedstore.Renewed, error) {
	f.presented = append(f.presented, presented)
	return fedstore.Renewed{Previous: presented, Unclaimed: f.unclaimed}, f.err
}

func csrPEMFor(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

type renewCase struct {
	name      string
	guard     fakeGuard
	body      func(presented, fresh *ecdsa.PrivateKey) string
	ca        *fakeCA
	store     *fakeRenewals
	status    int
	code      string
	issued    bool     // the CA was asked to sign
	revoked   []string // what the CA was asked to revoke
	detail    string   // in the audit row
	superseds bool     // the sweeper was kicked
}

// TestRenewRefusesAndIssues walks every deny path of POST /renew — the guard's, the
// body's, the key's, the CA's and the store's — and its success: each answered with
// its code, audited once as verb renew, a certificate the store did not record
// revoked at the CA.
func TestRenewRefusesAndIssues(t *testing.T) {
	csrOf := func(t *testing.T) func(_, fresh *ecdsa.PrivateKey) string {
		return func(_, fresh *ecdsa.PrivateKey) string { return `{"csr_pem": ` + quote(csrPEMFor(t, fresh)) + `}` }
	}
	ok := fakeGuard{caller: activeCaller()}
	ok.caller.Serial = "555"
	tests := []renewCase{
		{name: "grant revoked", guard: fakeGuard{caller: activeCaller(), err: errs.New(errs.Forbidden, api.CodeGrantRevoked, "revoked")},
			body: csrOf(t), status: 403, code: api.CodeGrantRevoked},
		{name: "stale certificate", guard: fakeGuard{caller: activeCaller(), err: errs.New(errs.Forbidden, api.CodeStaleCertificate, "stale")},
			body: csrOf(t), status: 403, code: api.CodeStaleCertificate},
		{name: "not a CSR", guard: ok, body: func(_, _ *ecdsa.PrivateKey) string { return `{"csr_pem": "nope"}` },
			status: 400, code: api.CodeInvalidCSR},
		{name: "unknown field", guard: ok, body: func(_, _ *ecdsa.PrivateKey) string { return `{"csr_pem": "", "token": "x"}` },
			status: 400, code: api.CodeInvalidBody},
		{name: "the presented key again", guard: ok,
			body: func(presented, _ *ecdsa.PrivateKey) string {
				return `{"csr_pem": ` + quote(csrPEMFor(t, presented)) + `}`
			},
			status: 400, code: api.CodeKeyReused},
		{name: "CA down", guard: ok, body: csrOf(t), ca: &fakeCA{err: errors.New("down")}, status: 502, code: api.CodeIssuanceFailed, issued: true},
		{name: "stale in the store", guard: ok, body: csrOf(t), store: &fakeRenewals{err: fedstore.ErrStaleSerial},
			status: 403, code: api.CodeStaleCertificate, issued: true, revoked: []string{"777"}, detail: "serial 777 replaces 555, not recorded: revoked"},
		{name: "grant ended meanwhile", guard: ok, body: csrOf(t), store: &fakeRenewals{err: fedstore.ErrTransition},
			status: 403, code: api.CodeGrantInactive, issued: true, revoked: []string{"777"}},
		{name: "renewed", guard: ok, body: csrOf(t), status: 201, issued: true, detail: "serial 777 replaces 555"},
		{name: "renewed after a lost answer", guard: ok, body: csrOf(t), store: &fakeRenewals{unclaimed: "666"}, status: 201,
			issued: true, detail: "serial 777 replaces 555, unclaimed 666 revoked", superseds: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runRenewCase(t, tc) })
	}
}

func runRenewCase(t *testing.T, tc renewCase) {
	presented, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	fresh, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if tc.ca == nil {
		tc.ca = &fakeCA{}
	}
	if tc.store == nil {
		tc.store = &fakeRenewals{}
	}
	kicked := false
	au := &fakeAudit{}
	s := &Server{Site: "work", Root: &x509.Certificate{Raw: []byte("root")}, Guard: tc.guard, Store: &fakeStore{}, Audit: au,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Renew: &Renewer{Fed: tc.store, CA: tc.ca, Lifetime: time.Hour, Overlap: time.Minute, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Superseded: func() { kicked = true }}}
	req := httptest.NewRequest(http.MethodPost, Prefix+"/renew", strings.NewReader(tc.body(presented, fresh)))
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{certFor(&presented.PublicKey, 555, time.Now().Add(time.Hour))}}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != tc.status {
		t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
	}
	if tc.code != "" && errorCode(t, rec.Body.Bytes()) != tc.code {
		t.Errorf("code %s, want %s", errorCode(t, rec.Body.Bytes()), tc.code)
	}
	if got := len(tc.ca.issued) > 0; got != tc.issued {
		t.Errorf("the CA was asked to sign: %v, want %v", got, tc.issued)
	}
	if strings.Join(tc.ca.revoked, ",") != strings.Join(tc.revoked, ",") {
		t.Errorf("revoked at the CA %v, want %v", tc.ca.revoked, tc.revoked)
	}
	if kicked != tc.superseds {
		t.Errorf("sweeper kicked: %v, want %v", kicked, tc.superseds)
	}
	if len(au.entries) != 1 || au.entries[0].Verb != "renew" || au.entries[0].Action != "POST "+Prefix+"/renew" {
		t.Fatalf("audit rows %+v, want one of verb renew", au.entries)
	}
	if e := au.entries[0]; (tc.code != "" && e.Reason != tc.code) || (tc.detail != "" && e.Detail != tc.detail) {
		t.Errorf("audit row reason %q detail %q, want %q %q", e.Reason, e.Detail, tc.code, tc.detail)
	}
	if tc.status == http.StatusCreated {
		var resp api.EnrollResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.GrantID != grantID || resp.CertificatePEM == "" {
			t.Errorf("answer %s (%v)", rec.Body, err)
		}
		if tc.store.presented[0] != "555" || tc.ca.issuedID.GrantID != grantID || tc.ca.issuedID.SubjectUserID != subject {
			t.Errorf("renewed %v as %+v", tc.store.presented, tc.ca.issuedID)
		}
		if d := time.Until(tc.ca.issued[0]); d < 59*time.Minute || d > time.Hour {
			t.Errorf("notAfter in %s, want the lifetime", d)
		}
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
