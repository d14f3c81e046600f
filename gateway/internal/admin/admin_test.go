package admin

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/audit"
	"github.com/mosaic-federation/mosaic/gateway/internal/enrollment"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
	"github.com/mosaic-federation/mosaic/gateway/internal/peers"
	"github.com/mosaic-federation/mosaic/gateway/internal/scope"
	"github.com/mosaic-federation/mosaic/gateway/internal/sealing"
	"github.com/mosaic-federation/mosaic/gateway/internal/store"
)

// fakeFed is the federation data in memory.
type fakeFed struct {
	inbound  map[string]fedstore.Peer
	outbound []fedstore.Peer
	grants   map[string]fedstore.Grant
	tokens   map[string][]byte // grant id → token hash
	failAdd  error
}

func newFakeFed() *fakeFed {
	return &fakeFed{inbound: map[string]fedstore.Peer{}, grants: map[string]fedstore.Grant{}, tokens: map[string][]byte{}}
}

func (f *fakeFed) CreateInboundPeer(_ context.Context, name string) (fedstore.Peer, error) {
	if _, ok := f.inbound[name]; ok {
		return fedstore.Peer{}, fedstore.ErrConflict
	}
	p := fedstore.Peer{ID: uuid.NewString(), Direction: "inbound", Name: name, State: "pending"}
	f.inbound[name] = p
	return p, nil
}

func (f *fakeFed) InboundPeer(_ context.Context, name string) (fedstore.Peer, error) {
	if p, ok := f.inbound[name]; ok {
		return p, nil
	}
	return fedstore.Peer{}, fedstore.ErrNotFound
}

func (f *fakeFed) OutboundPeer(_ context.Context, owner, name string) (fedstore.Peer, error) {
	for _, p := range f.outbound {
		if p.OwnerUserID == owner && p.Name == name {
			return p, nil
		}
	}
	return fedstore.Peer{}, fedstore.ErrNotFound
}

func (f *fakeFed) Peers(context.Context, string) ([]fedstore.Peer, error) { return f.outbound, nil }

func (f *fakeFed) AddOutboundPeer(_ context.Context, p fedstore.Peer) error {
	f.outbound = append(f.outbound, p)
	return nil
}

func (f *fakeFed) CreateGrant(_ context.Context, peerID, subject string, sc scope.Scope, expiresAt time.Time, rate string) (fedstore.Grant, error) {
	g := fedstore.Grant{ID: uuid.NewString(), PeerID: peerID, SubjectUserID: subject, Scope: sc, Status: "pending", ExpiresAt: expiresAt, RateLimit: rate,
		CreatedAt: time.Now().Add(time.Duration(len(f.grants)) * time.Microsecond)} // strictly newer than the last
	f.grants[g.ID] = g
	return g, nil
}

func (f *fakeFed) Grant(_ context.Context, id string) (fedstore.Grant, error) {
	if g, ok := f.grants[id]; ok {
		return g, nil
	}
	return fedstore.Grant{}, fedstore.ErrNotFound
}

func (f *fakeFed) Grants(context.Context) ([]fedstore.Grant, error) {
	var out []fedstore.Grant
	for _, g := range f.grants {
		for _, p := range f.inbound {
			if p.ID == g.PeerID {
				g.Peer = p.Name
			}
		}
		out = append(out, g)
	}
	// Newest first, as the store lists them.
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

func (f *fakeFed) RevokeGrant(_ context.Context, id, _ string) (fedstore.Grant, error) {
	g, ok := f.grants[id]
	if !ok || g.Status == "revoked" {
		return g, fedstore.ErrTransition
	}
	g.Status = "revoked"
	f.grants[id] = g
	return g, nil
}

func (f *fakeFed) RenewalStates(context.Context) (map[string]fedstore.RenewalState, error) {
	return nil, nil
}

func (f *fakeFed) AddToken(_ context.Context, grantID string, hash []byte, _ time.Time) error {
	if f.failAdd != nil {
		return f.failAdd
	}
	f.tokens[grantID] = hash
	return nil
}

func (f *fakeFed) SetInboundPeerState(_ context.Context, name, state string) (fedstore.Peer, []string, error) {
	p, ok := f.inbound[name]
	if !ok {
		return p, nil, fedstore.ErrNotFound
	}
	p.State = state
	f.inbound[name] = p
	return p, nil, nil
}

func (f *fakeFed) RemoveOutboundPeer(_ context.Context, owner, name string) (fedstore.Peer, error) {
	for i, p := range f.outbound {
		if p.OwnerUserID == owner && p.Name == name {
			f.outbound = append(f.outbound[:i], f.outbound[i+1:]...)
			return p, nil
		}
	}
	return fedstore.Peer{}, fedstore.ErrNotFound
}

func (f *fakeFed) ReplaceOutboundPeer(_ context.Context, p fedstore.Peer) error {
	for i, old := range f.outbound {
		if old.ID == p.ID && old.OwnerUserID == p.OwnerUserID {
			f.outbound[i] = p
			return nil
		}
	}
	return fedstore.ErrNotFound
}

// fakeUsers knows one user.
type fakeUsers struct{ user store.User }

func (u fakeUsers) UserByEmail(_ context.Context, email string) (store.User, error) {
	if email == u.user.Email {
		return u.user, nil
	}
	return store.User{}, store.ErrNotFound
}

func (u fakeUsers) UserByID(_ context.Context, id string) (store.User, error) {
	if id == u.user.ID {
		return u.user, nil
	}
	return store.User{}, store.ErrNotFound
}

// fakeAudit records rows, or fails.
type fakeAudit struct {
	rows []audit.Entry
	err  error
}

func (a *fakeAudit) Append(_ context.Context, e audit.Entry) error {
	if a.err != nil {
		return a.err
	}
	a.rows = append(a.rows, e)
	return nil
}

func (a *fakeAudit) List(context.Context, audit.Filter) ([]api.AuditEntry, error) { return nil, nil }

func (a *fakeAudit) Head(context.Context) (audit.Head, error) { return audit.Head{}, audit.ErrEmpty }

func (a *fakeAudit) Verify(context.Context, *audit.Head) (api.AuditVerify, error) {
	return api.AuditVerify{OK: true}, nil
}

var ada = store.User{ID: "0a0a0a0a-0000-4000-8000-00000000000a", Email: "ada@work.example"}

func keyring(t *testing.T) *sealing.Keyring {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	kr, err := sealing.Parse([]byte(base64.StdEncoding.EncodeToString(raw) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func newAdmin(t *testing.T) (*Admin, *fakeFed, *fakeAudit) {
	fed, au := newFakeFed(), &fakeAudit{}
	return &Admin{Fed: fed, Users: fakeUsers{ada}, Audit: au, Keys: keyring(t), PublicURL: "https://work.example:8443",
		RootDER: []byte("root der"), EnrollmentTokenTTL: 15 * time.Minute, GrantTTL: time.Hour, RequestID: "cli-test"}, fed, au
}

const goodScope = `{"resources": ["tasks"], "include_personal": true, "max_rows_per_query": 10}`

func TestCreatePeerRefuses(t *testing.T) {
	a, _, au := newAdmin(t)
	for _, bad := range []string{"", "a b", strings.Repeat("x", 65), "é"} {
		if _, err := a.CreatePeer(context.Background(), bad); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	if len(au.rows) != 0 {
		t.Errorf("refused names were audited as changes: %+v", au.rows)
	}
	if _, err := a.CreatePeer(context.Background(), "home"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreatePeer(context.Background(), "home"); !errors.Is(err, fedstore.ErrConflict) {
		t.Errorf("a second peer named home: %v", err)
	}
	if last := au.rows[len(au.rows)-1]; last.Outcome != api.OutcomeFailed || last.Reason != api.ReasonConflict {
		t.Errorf("the conflict was audited as %+v", last)
	}
	au.err = errors.New("audit down")
	if _, err := a.CreatePeer(context.Background(), "lab"); err == nil {
		t.Error("a change that cannot be audited must fail")
	}
}

func TestCreateGrant(t *testing.T) {
	ctx := context.Background()
	a, fed, au := newAdmin(t)
	if _, err := a.CreatePeer(ctx, "home"); err != nil {
		t.Fatal(err)
	}
	refusals := []struct {
		name string
		req  GrantRequest
		want string
	}{
		{"credentials in scope", GrantRequest{Peer: "home", SubjectUser: ada.Email,
			Scope: []byte(`{"resources": ["credentials"], "max_rows_per_query": 1}`)}, "credentials"},
		{"unknown peer", GrantRequest{Peer: "nobody", SubjectUser: ada.Email, Scope: []byte(goodScope)}, "--peer"},
		{"unknown subject", GrantRequest{Peer: "home", SubjectUser: "eve@work.example", Scope: []byte(goodScope)}, "--subject-user"},
		{"a rate that is not one", GrantRequest{Peer: "home", SubjectUser: ada.Email, Scope: []byte(goodScope), Rate: "fast"}, "--rate"},
	}
	for _, tc := range refusals {
		if _, err := a.CreateGrant(ctx, tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
	if len(fed.grants) != 0 {
		t.Fatalf("a refused request made a grant")
	}
	out, err := a.CreateGrant(ctx, GrantRequest{Peer: "home", SubjectUser: ada.ID, Scope: []byte(goodScope)})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(out.EnrollmentURL)
	if err != nil || u.RawQuery != "" || u.Path != enrollment.Path {
		t.Fatalf("enrollment URL %q", out.EnrollmentURL)
	}
	inv, err := enrollment.Parse(out.EnrollmentURL)
	if err != nil || !inv.Pins([]byte("root der")) {
		t.Fatalf("the URL must pin the site's root: %+v %v", inv, err)
	}
	if !bytes.Equal(fed.tokens[out.GrantID], enrollment.HashToken(inv.Token)) {
		t.Error("the stored token is not the hash of the URL's token")
	}
	for _, row := range au.rows {
		if strings.Contains(row.Detail, inv.Token) || strings.Contains(row.Detail, inv.Token[8:]) {
			t.Errorf("an audit row holds more of the token than its first 8 characters: %+v", row)
		}
	}
	if out.SubjectUserID != ada.ID || out.Status != "pending" {
		t.Errorf("%+v", out)
	}
}

func TestNewTokenRefusesAGrantThatIsNotPending(t *testing.T) {
	ctx := context.Background()
	a, fed, au := newAdmin(t)
	g, _ := fed.CreateGrant(ctx, "p", ada.ID, scope.Scope{}, time.Now().Add(time.Hour), "")
	fed.failAdd = fmt.Errorf("%w: grant is active", fedstore.ErrTransition)
	if _, err := a.NewToken(ctx, g.ID); !errors.Is(err, fedstore.ErrTransition) {
		t.Fatalf("got %v", err)
	}
	if last := au.rows[len(au.rows)-1]; last.Outcome != api.OutcomeDenied || last.Reason != api.CodeGrantNotPending {
		t.Errorf("audited as %+v", last)
	}
	if _, err := a.NewToken(ctx, uuid.NewString()); err == nil || !strings.Contains(err.Error(), "--grant") {
		t.Errorf("an unknown grant: %v", err)
	}
}

func TestRevokeGrant(t *testing.T) {
	ctx := context.Background()
	a, fed, au := newAdmin(t)
	g, _ := fed.CreateGrant(ctx, "p", ada.ID, scope.Scope{}, time.Now().Add(time.Hour), "")
	if got, err := a.RevokeGrant(ctx, g.ID, "left"); err != nil || got.Status != "revoked" {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := a.RevokeGrant(ctx, g.ID, "again"); !errors.Is(err, fedstore.ErrTransition) {
		t.Fatalf("revoking twice: %v", err)
	}
	if last := au.rows[len(au.rows)-1]; last.Outcome != api.OutcomeDenied || last.Reason != api.ReasonInvalidTransition {
		t.Errorf("audited as %+v", last)
	}
}

// fakeEnroller issues a self-signed certificate for the CSR's key.
type fakeEnroller struct {
	fetchErr, enrollErr error
	grantID             string
}

func (e fakeEnroller) FetchRoot(context.Context, enrollment.Invitation) (*x509.Certificate, error) {
	if e.fetchErr != nil {
		return nil, e.fetchErr
	}
	return selfSigned(nil), nil
}

func (e fakeEnroller) Enroll(context.Context, enrollment.Invitation, *x509.Certificate) (*fedclient.Enrolled, error) {
	if e.enrollErr != nil {
		return nil, e.enrollErr
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := selfSigned(key)
	return &fedclient.Enrolled{Key: key, Cert: cert, GrantID: e.grantID,
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))}, nil
}

func selfSigned(key *ecdsa.PrivateKey) *x509.Certificate {
	if key == nil {
		key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	c, _ := x509.ParseCertificate(der)
	return c
}

func TestAddPeer(t *testing.T) {
	ctx := context.Background()
	a, fed, _ := newAdmin(t)
	good := enrollment.URL("https://work.example:8443", "met_secret", []byte("root der"))
	refusals := []struct {
		name     string
		req      AddPeerRequest
		enroller Enroller
		want     string
	}{
		{"bad name", AddPeerRequest{URL: good, Name: "a b", LocalUser: ada.Email}, fakeEnroller{}, "--name"},
		{"unknown local user", AddPeerRequest{URL: good, Name: "work", LocalUser: "eve"}, fakeEnroller{}, "--local-user"},
		{"not an enrollment URL", AddPeerRequest{URL: "http://x/#token=met_secret", Name: "work", LocalUser: ada.Email}, fakeEnroller{}, "https"},
		{"the root does not match", AddPeerRequest{URL: good, Name: "work", LocalUser: ada.Email},
			fakeEnroller{fetchErr: errors.New("does not match the enrollment URL's ca-sha256")}, "ca-sha256"},
	}
	for _, tc := range refusals {
		a.Enroller = tc.enroller
		_, err := a.AddPeer(ctx, tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "met_secret") {
			t.Errorf("%s: the error quotes the token: %v", tc.name, err)
		}
	}
	if len(fed.outbound) != 0 {
		t.Fatal("a refused peer add stored a peer")
	}
	a.Enroller = fakeEnroller{grantID: uuid.NewString()}
	out, err := a.AddPeer(ctx, AddPeerRequest{URL: good, Name: "work", LocalUser: ada.Email})
	if err != nil || out.State != "active" || out.URL != "https://work.example:8443" {
		t.Fatalf("%+v %v", out, err)
	}
	row := fed.outbound[0]
	if bytes.Contains(row.KeySealed, []byte("PRIVATE KEY")) || row.OwnerUserID != ada.ID {
		t.Errorf("the key must be sealed, the peer owned by the local user: %+v", row)
	}
	if _, err := a.AddPeer(ctx, AddPeerRequest{URL: good, Name: "work", LocalUser: ada.Email}); err == nil {
		t.Error("a second peer of the same name for the same user was added")
	}
	if v, err := a.VerifyPeer(ctx, "work", ada.Email); err != nil || !v.KeyMatches {
		t.Errorf("verify: %+v %v", v, err)
	}
}

func TestVerifyPeerRefusesAKeySealedForAnotherRow(t *testing.T) {
	ctx := context.Background()
	a, fed, _ := newAdmin(t)
	a.Enroller = fakeEnroller{grantID: uuid.NewString()}
	good := enrollment.URL("https://work.example:8443", "met_secret", []byte("root der"))
	for _, name := range []string{"work", "lab"} {
		if _, err := a.AddPeer(ctx, AddPeerRequest{URL: good, Name: name, LocalUser: ada.Email}); err != nil {
			t.Fatal(err)
		}
	}
	fed.outbound[1].KeySealed = fed.outbound[0].KeySealed // an attacker with the database copies work's key into lab's row
	fed.outbound[1].CertPEM = fed.outbound[0].CertPEM
	if _, err := a.VerifyPeer(ctx, "lab", ada.Email); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("a key copied into another row opened: %v", err)
	}
	if _, err := peers.Credentials(a.Keys, fed.outbound[1]); err == nil {
		t.Fatal("the directory would use a key copied into another row")
	}
}

func TestAuditListRefusesBadFilters(t *testing.T) {
	a, _, _ := newAdmin(t)
	for _, f := range []audit.Filter{{Limit: 0}, {Limit: 1, Outcome: "maybe"}, {Limit: 1, GrantID: "x' OR 1=1"}} {
		if _, err := a.AuditList(context.Background(), f); err == nil {
			t.Errorf("%+v accepted", f)
		}
	}
	if _, err := a.AuditVerify(context.Background(), "12:nothex"); err == nil || !strings.Contains(err.Error(), "--since-head") {
		t.Errorf("a malformed head: %v", err)
	}
}

// --replace swaps a new enrollment into the existing row (its key sealed to that row),
// and is refused, before the token is spent, when there is nothing to replace; adding
// an existing name without it says to use it.
func TestAddPeerReplace(t *testing.T) {
	ctx := context.Background()
	a, fed, _ := newAdmin(t)
	good := enrollment.URL("https://work.example:8443", "met_secret", []byte("root der"))
	a.Enroller = fakeEnroller{grantID: uuid.NewString()}
	req := AddPeerRequest{URL: good, Name: "work", LocalUser: ada.Email, Replace: true}
	if _, err := a.AddPeer(ctx, req); err == nil || !strings.Contains(err.Error(), "no peer named") {
		t.Fatalf("--replace without a peer: %v", err)
	}
	req.Replace = false
	first, err := a.AddPeer(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddPeer(ctx, req); err == nil || !strings.Contains(err.Error(), "--replace") {
		t.Fatalf("adding an existing name does not point at --replace: %v", err)
	}
	newGrant := uuid.NewString()
	a.Enroller = fakeEnroller{grantID: newGrant}
	req.Replace = true
	second, err := a.AddPeer(ctx, req)
	if err != nil || second.ID != first.ID || second.GrantID != newGrant || len(fed.outbound) != 1 {
		t.Fatalf("replace: %+v %v (%d peers)", second, err, len(fed.outbound))
	}
	if v, err := a.VerifyPeer(ctx, "work", ada.Email); err != nil || !v.KeyMatches {
		t.Errorf("the replaced key does not open for its row: %+v %v", v, err)
	}
	if _, err := a.RemovePeer(ctx, "work", ada.Email); err != nil || len(fed.outbound) != 0 {
		t.Errorf("remove: %v, %d peers left", err, len(fed.outbound))
	}
	if _, err := a.RemovePeer(ctx, "work", ada.Email); err == nil {
		t.Error("removing a peer twice succeeded")
	}
}
