// Package identity reads and checks the federation identity a client certificate
// carries: the grant id and subject user id in two custom extensions (SPEC §6), each
// the DER UTF8String of a canonical lowercase UUID.
package identity

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// Identity is who a federation client certificate speaks for.
type Identity struct {
	GrantID       string
	SubjectUserID string
}

// ErrMissing and ErrMalformed tell an absent extension from a bad one.
var (
	ErrMissing   = errors.New("identity: extension missing")
	ErrMalformed = errors.New("identity: extension malformed")
)

// FromCertificate extracts both OIDs: each must appear exactly once and hold a
// UTF8String that is a canonical lowercase UUID.
func FromCertificate(cert *x509.Certificate) (Identity, error) {
	grant, err := uuidExt(cert, api.OIDGrantID)
	if err != nil {
		return Identity{}, err
	}
	subject, err := uuidExt(cert, api.OIDSubjectUserID)
	if err != nil {
		return Identity{}, err
	}
	return Identity{GrantID: grant, SubjectUserID: subject}, nil
}

func uuidExt(cert *x509.Certificate, oid asn1.ObjectIdentifier) (string, error) {
	var found [][]byte
	for _, e := range cert.Extensions {
		if e.Id.Equal(oid) {
			found = append(found, e.Value)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w: %s", ErrMissing, oid)
	case 1:
	default:
		return "", fmt.Errorf("%w: %s appears %d times", ErrMalformed, oid, len(found))
	}
	var v string
	rest, err := asn1.UnmarshalWithParams(found[0], &v, "utf8")
	if err != nil || len(rest) != 0 || len(found[0]) == 0 || found[0][0] != asn1.TagUTF8String {
		return "", fmt.Errorf("%w: %s is not a DER UTF8String", ErrMalformed, oid)
	}
	if u, err := uuid.Parse(v); err != nil || u.String() != v {
		return "", fmt.Errorf("%w: %s is not a canonical lowercase UUID", ErrMalformed, oid)
	}
	return v, nil
}

// VerifyIssued checks a freshly issued federation certificate before anything stores
// or returns it: the identity it binds is exactly the one asked for, subject CN is the
// grant id, it is for client authentication only and carries no SANs.
func VerifyIssued(cert *x509.Certificate, want Identity) error {
	got, err := FromCertificate(cert)
	if err != nil {
		return err
	}
	switch {
	case got != want:
		return errors.New("identity: the issued certificate binds another grant or subject")
	case cert.Subject.CommonName != want.GrantID:
		return errors.New("identity: the issued certificate's CN is not the grant id")
	case !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}):
		return errors.New("identity: the issued certificate is not for client authentication only")
	case len(cert.DNSNames)+len(cert.IPAddresses)+len(cert.URIs)+len(cert.EmailAddresses) > 0:
		return errors.New("identity: the issued certificate carries SANs")
	}
	return nil
}
