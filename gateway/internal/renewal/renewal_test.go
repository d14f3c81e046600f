package renewal

import (
	"crypto/x509"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/gateway/internal/fedclient"
)

// renew_at is ⅔ of the lifetime from issuance, minus at most a twentieth of it, the
// same for every replica.
func TestRenewAtIsTwoThirdsMinusJitter(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, life := range []time.Duration{4 * time.Minute, 24 * time.Hour, 720 * time.Hour} {
		for _, serial := range []int64{1, 977, 1 << 40} {
			leaf := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: start, NotAfter: start.Add(life)}
			got := RenewAt(leaf)
			latest, earliest := start.Add(life*2/3), start.Add(life*2/3-life/20)
			if got.After(latest) || got.Before(earliest) {
				t.Errorf("life %s serial %d: renew_at %s, want within [%s, %s]", life, serial, got, earliest, latest)
			}
			if !RenewAt(leaf).Equal(got) {
				t.Errorf("life %s serial %d: renew_at differs between calls", life, serial)
			}
		}
	}
}

func TestBackoffDoublesToItsBound(t *testing.T) {
	r := &Renewer{}
	var delays []time.Duration
	for range 10 {
		r.failed("p")
		delays = append(delays, r.retry["p"].delay)
	}
	if delays[0] != Backoff.First || delays[1] != 2*Backoff.First || delays[9] != Backoff.Max {
		t.Errorf("delays %v", delays)
	}
	if r.mayTry("p", time.Now()) {
		t.Error("a failed peer is tried again before its backoff")
	}
	r.succeeded("p")
	if !r.mayTry("p", time.Now()) {
		t.Error("a renewed peer still waits")
	}
}

// What peer list shows of a failure: the code first, the fix for an expired
// certificate, and never more than a peer's code of what it said.
func TestFailureNamesTheCodeAndTheFix(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errExpired, api.CodeCertificateExpired + ": the certificate expired before it was renewed; ask the serving site for a new grant, then run peer add --replace"},
		{&fedclient.PeerError{Peer: "work", Status: 403, Code: api.CodeGrantRevoked}, "grant_revoked: peer work answered 403 grant_revoked"},
		{errors.New(strings.Repeat("x", 400)), strings.Repeat("x", 300)},
	} {
		if got := failure(tc.err); got != tc.want {
			t.Errorf("failure(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
