package revocation

import (
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
	"testing"
	"time"
)

// issuer is a CA certificate and its key, as step-ca's intermediate.
type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newIssuer(t *testing.T, name string) issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return issuer{cert: cert, key: key}
}

// crlOf is a CRL numbered number listing serials, signed by i.
func (i issuer) crlOf(t *testing.T, number int64, serials ...int64) []byte {
	t.Helper()
	tpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(10 * time.Minute)}
	for _, s := range serials {
		tpl.RevokedCertificateEntries = append(tpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tpl, i.cert, i.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// served is what the fake CA answers next.
type served struct {
	der []byte
	err error
}

func (s *served) fetch(context.Context) ([]byte, error) { return s.der, s.err }

func TestRefreshKeepsTheLastGoodCRLAndRefusesBadOnes(t *testing.T) {
	ca := newIssuer(t, "Intermediate")
	impostor := newIssuer(t, "Intermediate") // same name, another key
	stranger := newIssuer(t, "Another CA")
	ca2 := served{der: ca.crlOf(t, 5, 100)}
	l := NewList(ca.cert, ca2.fetch, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if l.Revoked(big.NewInt(100)) {
		t.Fatal("a list with no CRL yet lists a serial")
	}
	if err := l.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !l.Revoked(big.NewInt(100)) || l.Revoked(big.NewInt(101)) {
		t.Fatal("the CRL in force is not the one fetched")
	}
	for _, tc := range []struct {
		name string
		next served
	}{
		{"the CA unreachable", served{err: errors.New("connection refused")}},
		{"not a CRL", served{der: []byte("<html>")}},
		{"signed by another key under the same name", served{der: impostor.crlOf(t, 6)}},
		{"of another issuer", served{der: stranger.crlOf(t, 6)}},
		{"an older number (a replay)", served{der: ca.crlOf(t, 4)}},
	} {
		ca2 = tc.next
		if err := l.Refresh(context.Background()); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
		if !l.Revoked(big.NewInt(100)) {
			t.Errorf("%s: the last good CRL is no longer in force", tc.name)
		}
		if _, lastErr := l.Status(); lastErr == nil {
			t.Errorf("%s: Status reports no error", tc.name)
		}
	}
	ca2 = served{der: ca.crlOf(t, 6, 101)}
	if err := l.Refresh(context.Background()); err != nil || l.Revoked(big.NewInt(100)) || !l.Revoked(big.NewInt(101)) {
		t.Fatalf("a newer CRL was not put in force: %v", err)
	}
	if next, lastErr := l.Status(); lastErr != nil || time.Until(next) < 9*time.Minute {
		t.Errorf("status after a good refresh: %v %v", next, lastErr)
	}
}

func TestVerifyConnectionRefusesAListedClientCertificate(t *testing.T) {
	ca := newIssuer(t, "Intermediate")
	crl := served{der: ca.crlOf(t, 1, 7)}
	l := NewList(ca.cert, crl.fetch, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := l.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	state := func(serial int64) tls.ConnectionState {
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{{SerialNumber: big.NewInt(serial)}}}
	}
	if err := l.VerifyConnection(state(7)); err == nil {
		t.Error("a revoked client certificate passed the handshake")
	}
	if err := l.VerifyConnection(state(8)); err != nil {
		t.Errorf("a good client certificate was refused: %v", err)
	}
	if err := l.VerifyConnection(tls.ConnectionState{}); err != nil {
		t.Errorf("a connection without a certificate was refused at the handshake: %v", err)
	}
}
