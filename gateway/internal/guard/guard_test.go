package guard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/errs"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedstore"
)

const (
	grantID   = "7b0c5a1e-1111-4222-8333-444455556666"
	subjectID = "9d2e6f30-aaaa-4bbb-8ccc-ddddeeeeffff"
)

type oneGrant fedstore.Grant

func (g oneGrant) GuardGrant(context.Context, string) (fedstore.Grant, error) {
	return fedstore.Grant(g), nil
}

func (g oneGrant) PreviousSerial(context.Context, string, string) (time.Time, error) {
	return time.Time{}, fedstore.ErrNotFound
}

// withPrevious is a grant whose last renewal replaced serial "previous", accepted
// until until (err: the lookup fails).
type withPrevious struct {
	oneGrant
	until time.Time
	err   error
}

func (g withPrevious) PreviousSerial(_ context.Context, grant, serial string) (time.Time, error) {
	switch {
	case g.err != nil:
		return time.Time{}, g.err
	case grant == g.ID && serial == "4243":
		return g.until, nil
	}
	return time.Time{}, fedstore.ErrNotFound
}

// The grant's current certificate passes, the previous one only inside its overlap,
// any other is 403 stale_certificate; a failed lookup is never a pass.
func TestCheckAcceptsTheCurrentAndThePreviousSerial(t *testing.T) {
	grant := oneGrant{ID: grantID, SubjectUserID: subjectID, Status: "active", PeerState: "active",
		CertSerial: "4242", ExpiresAt: time.Now().Add(time.Hour)}
	for _, tc := range []struct {
		name   string
		serial int64
		grants withPrevious
		kind   errs.Kind
		code   string
	}{
		{"current", 4242, withPrevious{oneGrant: grant}, 0, ""},
		{"previous inside its overlap", 4243, withPrevious{oneGrant: grant, until: time.Now().Add(time.Minute)}, 0, ""},
		{"previous past its overlap", 4243, withPrevious{oneGrant: grant, until: time.Now().Add(-time.Second)}, errs.Forbidden, api.CodeStaleCertificate},
		{"neither", 4244, withPrevious{oneGrant: grant, until: time.Now().Add(time.Minute)}, errs.Forbidden, api.CodeStaleCertificate},
		{"lookup failed", 4243, withPrevious{oneGrant: grant, err: errors.New("db down")}, errs.Internal, api.CodeInternal},
		{"a grant without a serial", 4243, withPrevious{oneGrant: oneGrant{ID: grantID, SubjectUserID: subjectID,
			Status: "active", PeerState: "active", ExpiresAt: time.Now().Add(time.Hour)}}, errs.Forbidden, api.CodeStaleCertificate},
	} {
		leaf := &x509.Certificate{
			SerialNumber: big.NewInt(tc.serial),
			NotAfter:     time.Now().Add(time.Hour),
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			Extensions: []pkix.Extension{provExt(t, 1, "federation", false),
				utf8Ext(t, api.OIDGrantID, grantID), utf8Ext(t, api.OIDSubjectUserID, subjectID)},
		}
		g := &Guard{Grants: tc.grants, Provisioner: "federation", ProvisionerKID: "kid"}
		c, err := g.Check(context.Background(), &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf}}})
		var e *errs.Error
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.code != "" && (!errors.As(err, &e) || e.Code != tc.code || e.Kind != tc.kind):
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.code)
		case c.Serial != big.NewInt(tc.serial).String():
			t.Errorf("%s: the caller's serial is %q", tc.name, c.Serial)
		}
	}
}

type revokedSerials map[string]bool

func (r revokedSerials) Revoked(serial *big.Int) bool { return r[serial.String()] }

func utf8Ext(t *testing.T, oid asn1.ObjectIdentifier, v string) pkix.Extension {
	t.Helper()
	der, err := asn1.MarshalWithParams(v, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oid, Value: der}
}

// A certificate the CRL lists is refused with 401 certificate_revoked, even while
// its grant is active (a connection opened before the revocation), and the refusal
// still names the grant for the audit row.
func TestCheckRefusesARevokedSerial(t *testing.T) {
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(4242),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		Extensions: []pkix.Extension{provExt(t, 1, "federation", false),
			utf8Ext(t, api.OIDGrantID, grantID), utf8Ext(t, api.OIDSubjectUserID, subjectID)},
	}
	grant := oneGrant{ID: grantID, SubjectUserID: subjectID, Status: "active", PeerState: "active",
		CertSerial: "4242", ExpiresAt: time.Now().Add(time.Hour)}
	state := &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf}}}
	for _, tc := range []struct {
		name    string
		revoked revokedSerials
		code    string
	}{
		{"not listed", revokedSerials{"1": true}, ""},
		{"listed", revokedSerials{"4242": true}, api.CodeCertificateRevoked},
	} {
		g := &Guard{Grants: grant, Provisioner: "federation", ProvisionerKID: "kid", Revoked: tc.revoked}
		c, err := g.Check(context.Background(), state)
		var e *errs.Error
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.code != "" && (!errors.As(err, &e) || e.Code != tc.code || e.Kind != errs.Unauthenticated):
			t.Errorf("%s: got %v, want 401 %s", tc.name, err, tc.code)
		case c.Identity.GrantID != grantID:
			t.Errorf("%s: the caller does not name the grant: %+v", tc.name, c)
		}
	}
}

// An expired certificate is 401 certificate_expired on a kept-alive connection; the
// refusal names the grant when the certificate is otherwise a federation one, and
// nothing when it is not (its OIDs are then no one's word).
func TestCheckRefusesAnExpiredCertificate(t *testing.T) {
	grant := oneGrant{ID: grantID, SubjectUserID: subjectID, Status: "active", PeerState: "active",
		CertSerial: "4242", ExpiresAt: time.Now().Add(time.Hour)}
	for _, tc := range []struct {
		name, provisioner, wantGrant string
	}{
		{"a federation certificate", "federation", grantID},
		{"another provisioner's", "other", ""},
	} {
		leaf := &x509.Certificate{
			SerialNumber: big.NewInt(4242),
			NotAfter:     time.Now().Add(-time.Second),
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			Extensions: []pkix.Extension{provExt(t, 1, tc.provisioner, false),
				utf8Ext(t, api.OIDGrantID, grantID), utf8Ext(t, api.OIDSubjectUserID, subjectID)},
		}
		g := &Guard{Grants: grant, Provisioner: "federation", ProvisionerKID: "kid"}
		c, err := g.Check(context.Background(), &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf}}})
		var e *errs.Error
		if !errors.As(err, &e) || e.Code != api.CodeCertificateExpired || e.Kind != errs.Unauthenticated {
			t.Errorf("%s: got %v, want 401 certificate_expired", tc.name, err)
		}
		if c.Identity.GrantID != tc.wantGrant {
			t.Errorf("%s: the refusal names grant %q, want %q", tc.name, c.Identity.GrantID, tc.wantGrant)
		}
	}
}
