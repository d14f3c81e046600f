package tier

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// maxCRL bounds the CRL doctor reads (as the listener's fetch does).
const maxCRL = 8 << 20

// probeCA fetches the site CA's CRL, which every federation listener refreshes: a CA
// that does not serve it, or serves one past its NextUpdate, leaves the listeners on
// the last CRL they fetched, so revocations made since are not enforced in the
// handshake (the guard's live grant check still is). Yellow, not red: the site serves.
func probeCA(ctx context.Context, caURL, rootPath string) (Service, []string) {
	svc := Service{Name: "step-ca", Status: "down"}
	pem, err := os.ReadFile(rootPath)
	roots := x509.NewCertPool()
	if err != nil || !roots.AppendCertsFromPEM(pem) {
		svc.Detail = "no root"
		return svc, []string{fmt.Sprintf("ca.root %s holds no PEM certificate: point it at the site CA's root_ca.crt", rootPath)}
	}
	client := &http.Client{Timeout: ProbeTimeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	start := time.Now()
	crl, err := fetchCRL(ctx, client, caURL+"/1.0/crl")
	svc.LatencyMS = time.Since(start).Milliseconds()
	if err != nil {
		svc.Detail = "CRL unavailable: " + err.Error()
		return svc, []string{fmt.Sprintf("step-ca at %s does not serve its CRL (%s): federation listeners keep enforcing "+
			"the last one they fetched, and certificates revoked since pass the handshake; start step-ca (or enable "+
			"\"crl\" in its ca.json)", caURL, err)}
	}
	svc.Status, svc.Detail = "up", fmt.Sprintf("CRL %s, %d revoked, next update %s", crl.Number, len(crl.RevokedCertificateEntries),
		crl.NextUpdate.UTC().Format(time.RFC3339))
	if !crl.NextUpdate.IsZero() && time.Now().After(crl.NextUpdate) {
		return svc, []string{fmt.Sprintf("step-ca at %s serves a CRL past its next update (%s): it is not regenerating it; "+
			"check step-ca's log and its \"crl\" settings", caURL, crl.NextUpdate.UTC().Format(time.RFC3339))}
	}
	return svc, nil
}

func fetchCRL(ctx context.Context, client *http.Client, url string) (*x509.RevocationList, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s", reason(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	der, err := io.ReadAll(io.LimitReader(resp.Body, maxCRL))
	if err != nil {
		return nil, fmt.Errorf("%s", reason(err))
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("not a CRL")
	}
	return crl, nil
}
