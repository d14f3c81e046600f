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
