package siteinit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"embed"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.step.sm/crypto/pemutil"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

//go:embed templates/*.tpl
var caTemplates embed.FS

// Provisioner names and certificate lifetimes of every site's CA (SPEC §3).
const (
	FederationProvisioner = "federation"
	ListenerProvisioner   = "gateway"
	// TestProvisioner issues client certificates WITHOUT the OIDs: acceptance only.
	TestProvisioner = "federation-no-oids"
	// Until renewal (M6) client certificates live 30 days, so a demo keeps working.
	federationCertLifetime = "720h"
	// crlCacheDuration is how long step-ca's CRL says it is good for (its NextUpdate).
	crlCacheDuration = "10m"
	caLifetime       = 10 * 365 * 24 * time.Hour
)

// pbes2Count is the PBKDF2 work factor on the provisioners' keys, as `step` uses. A
// variable only so the unit tests can lower it: 600,000 rounds under -race cost
// seconds per key, and the tests write dozens.
var pbes2Count = 600000

// The files of a CA, relative to its STEPPATH (the layout `step ca init` makes).
const (
	ConfigFile          = "config/ca.json"
	DefaultsFile        = "config/defaults.json"
	RootFile            = "certs/root_ca.crt"
	IntermediateFile    = "certs/intermediate_ca.crt"
	RootKeyFile         = "secrets/root_ca_key"
	IntermediateKeyFile = "secrets/intermediate_ca_key"
	templatesDir        = "templates"
	dbDir               = "db"
	templateFederation  = "federation.tpl"
	templateListener    = "listener.tpl"
	templateTestNoOIDs  = "no-oids.tpl"
)

// CAOptions says what CA InitCA makes.
type CAOptions struct {
	StepPath string   // where the CA's files go (STEPPATH)
	Name     string   // e.g. "Mosaic work CA"
	DNSNames []string // the names (or IPs) in step-ca's TLS certificate
	Address  string   // where step-ca listens, host:port or :port
	// URL is how gateways reach the CA (defaults.json, the CRL's distribution point);
	// "" means https://DNSNames[0]:<Address's port>.
	URL string
	// CAPassword encrypts the root's and intermediate's keys (step-ca's --password-file);
	// ProvisionerPassword the provisioners' keys (the gateway's ca.provisioner_password_file).
	CAPassword, ProvisionerPassword []byte
	// WithTestProvisioner adds TestProvisioner, whose template drops the OIDs.
	WithTestProvisioner bool
}

// CAResult is what InitCA made or found. It holds no secret.
type CAResult struct {
	StepPath     string   `json:"steppath"`
	Config       string   `json:"config"`
	Root         string   `json:"root"`
	Fingerprint  string   `json:"fingerprint"` // lowercase hex SHA-256 of the root's DER
	URL          string   `json:"url"`
	Provisioners []string `json:"provisioners"`
	// Created is false when the CA was there already (ca.json exists) and kept as it was.
	Created bool `json:"created"`
}

func (o CAOptions) check() error {
	var errs []error
	if o.StepPath == "" {
		errs = append(errs, errors.New("no STEPPATH: say where the CA's files go"))
	}
	if o.Name == "" {
		errs = append(errs, errors.New("no CA name"))
	}
	if len(o.DNSNames) == 0 {
		errs = append(errs, errors.New("no DNS name: name at least one host the CA answers as"))
	}
	if _, _, err := net.SplitHostPort(o.Address); err != nil {
		errs = append(errs, fmt.Errorf("address %q: want host:port or :port", o.Address))
	}
	if len(o.CAPassword) == 0 || len(o.ProvisionerPassword) == 0 {
		errs = append(errs, errors.New("the CA and provisioner passwords must not be empty"))
	}
	return errors.Join(errs...)
}

func (o CAOptions) url() string {
	if o.URL != "" {
		return o.URL
	}
	_, port, _ := net.SplitHostPort(o.Address)
	return "https://" + net.JoinHostPort(o.DNSNames[0], port)
}

// InitCA writes a standalone step-ca into o.StepPath: a root and an intermediate (P-256,
// ten years, keys encrypted with o.CAPassword), the JWK provisioners with their
// templates and claims (provisioners), the CRL settings, ca.json and defaults.json.
// When ca.json exists the CA is kept (Created false), once checked against o (keepCA):
// ca.json is written last, so its presence means a complete CA, and a run cut short
// is redone whole.
func InitCA(o CAOptions) (CAResult, error) {
	if err := o.check(); err != nil {
		return CAResult{}, err
	}
	p := func(rel string) string { return filepath.Join(o.StepPath, filepath.FromSlash(rel)) }
	res := CAResult{StepPath: o.StepPath, Config: p(ConfigFile), Root: p(RootFile), URL: o.url()}
	if kept, err := CAExists(o.StepPath); err != nil {
		return res, err
	} else if kept {
		return keepCA(o, p, res)
	}
	for _, d := range []string{"config", "certs", "secrets", templatesDir} {
		if err := os.MkdirAll(p(d), 0o700); err != nil {
			return res, err
		}
	}
	rootDER, err := writeCAPair(o, p)
	if err != nil {
		return res, err
	}
	if err := writeTemplates(p(templatesDir), o.WithTestProvisioner); err != nil {
		return res, err
	}
	provs, err := provisioners(o, p(templatesDir))
	if err != nil {
		return res, err
	}
	for _, pr := range provs {
		res.Provisioners = append(res.Provisioners, pr["name"].(string))
	}
	res.Fingerprint = api.RootFingerprint(rootDER)
	defaults := map[string]any{"ca-url": res.URL, "ca-config": res.Config, "fingerprint": res.Fingerprint, "root": res.Root}
	if err := writeJSON(p(DefaultsFile), defaults); err != nil {
		return res, err
	}
	if err := writeJSON(res.Config, caConfig(o, p, provs)); err != nil {
		return res, err
	}
	res.Created = true
	return res, nil
}

// CAExists reports whether stepPath holds a CA (its ca.json), which InitCA keeps.
func CAExists(stepPath string) (bool, error) {
	_, err := os.Lstat(filepath.Join(stepPath, filepath.FromSlash(ConfigFile)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// keepCA checks the CA already in o.StepPath before keeping it: its intermediate's key
// opens with o.CAPassword (else step-ca would not start) and is the certificate's, the
// federation and listener provisioners' keys open with o.ProvisionerPassword (else no
// gateway could enroll anyone), and it holds the test provisioner only when o asks for
// one (it issues client certificates without the OIDs). The templates are code, not
// state: they are written again, so a kept CA serves this release's.
func keepCA(o CAOptions, p func(string) string, res CAResult) (CAResult, error) {
	var cfg struct {
		Crt       string `json:"crt"`
		Key       string `json:"key"`
		Authority struct {
			Provisioners []struct {
				Name         string          `json:"name"`
				Key          json.RawMessage `json:"key"`
				EncryptedKey string          `json:"encryptedKey"`
			} `json:"provisioners"`
		} `json:"authority"`
	}
	if err := readJSON(res.Config, &cfg); err != nil {
		return res, err
	}
	refuse := func(format string, args ...any) (CAResult, error) {
		return res, fmt.Errorf("kept CA in %s: "+format, append([]any{o.StepPath}, args...)...)
	}
	found := map[string]int{}
	for i, pr := range cfg.Authority.Provisioners {
		res.Provisioners = append(res.Provisioners, pr.Name)
		found[pr.Name] = i
	}
	if _, ok := found[TestProvisioner]; ok && !o.WithTestProvisioner {
		return refuse("it holds the test-only provisioner %q, which issues client certificates without the grant OIDs: remove it from %s, or move the CA away to make a new one", TestProvisioner, res.Config)
	}
	if cfg.Key == "" || cfg.Crt == "" {
		return refuse("%s names no intermediate certificate or key (crt, key)", res.Config)
	}
	if err := checkCAKey(cfg.Crt, cfg.Key, o.CAPassword); err != nil {
		return refuse("%v: give the CA password it was made with (step-ca's --password-file), or move the CA away to make a new one", err)
	}
	for _, name := range []string{FederationProvisioner, ListenerProvisioner} {
		i, ok := found[name]
		if !ok {
			return refuse("no %q provisioner in %s: move the CA away to make a new one, or add it (docs/SETUP.md)", name, res.Config)
		}
		pr := cfg.Authority.Provisioners[i]
		if err := checkJWK(pr.Key, pr.EncryptedKey, o.ProvisionerPassword); err != nil {
			return refuse("the %q provisioner's key: %v: give the provisioner password it was made with (the gateway's ca.provisioner_password_file), or move the CA away to make a new one", name, err)
		}
	}
	if err := os.MkdirAll(p(templatesDir), 0o700); err != nil {
		return res, err
	}
	if err := writeTemplates(p(templatesDir), o.WithTestProvisioner); err != nil {
		return res, err
	}
	var err error
	res.Fingerprint, err = Fingerprint(res.Root)
	return res, err
}

// checkCAKey opens the intermediate's key with password and checks it is the
// certificate's.
func checkCAKey(certPath, keyPath string, password []byte) error {
	key, err := pemutil.Read(keyPath, pemutil.WithPassword(password))
	if err != nil {
		return fmt.Errorf("the intermediate's key %s does not open with the CA password", keyPath)
	}
	certs, err := pemutil.ReadCertificateBundle(certPath)
	if err != nil {
		return err
	}
	signer, ok := key.(crypto.Signer)
	if !ok || len(certs) == 0 {
		return fmt.Errorf("%s holds no private key", keyPath)
	}
	if pub, ok := certs[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(signer.Public()) {
		return fmt.Errorf("the intermediate's key %s is not the key of its certificate %s", keyPath, certPath)
	}
	return nil
}

// checkJWK decrypts a provisioner's encryptedKey with password, as caclient does, and
// checks it is the private half of the provisioner's public key.
func checkJWK(pubJSON json.RawMessage, encrypted string, password []byte) error {
	jwe, err := jose.ParseEncryptedCompact(encrypted, []jose.KeyAlgorithm{jose.PBES2_HS256_A128KW}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return errors.New("no encrypted key of ours (a PBES2 JWE)")
	}
	plain, err := jwe.Decrypt(password)
	if err != nil {
		return errors.New("it does not open with the provisioner password")
	}
	var priv, pub jose.JSONWebKey
	if err := priv.UnmarshalJSON(plain); err != nil || priv.IsPublic() {
		return errors.New("it holds no private key")
	}
	if err := pub.UnmarshalJSON(pubJSON); err != nil {
		return errors.New("no public key")
	}
	pk, ok := priv.Public().Key.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pk.Equal(pub.Key) {
		return errors.New("it is not the private half of the provisioner's public key")
	}
	return nil
}

// caConfig is ca.json, with the fields `step ca init` writes for a standalone CA.
func caConfig(o CAOptions, p func(string) string, provs []map[string]any) map[string]any {
	return map[string]any{
		"root": p(RootFile), "federatedRoots": nil, "crt": p(IntermediateFile), "key": p(IntermediateKeyFile),
		"address": o.Address, "insecureAddress": "", "dnsNames": o.DNSNames,
		"logger": map[string]any{"format": "text"},
		// The CRL needs the database: it lists every revoked serial.
		"db":        map[string]any{"type": "badgerv2", "dataSource": p(dbDir), "badgerFileLoadingMode": ""},
		"authority": map[string]any{"provisioners": provs},
		"tls": map[string]any{
			"cipherSuites": []string{"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
			"minVersion":   1.2, "maxVersion": 1.3, "renegotiation": false,
		},
		// Regenerated at once on a revocation; the distribution point is explicit
		// because step-ca's default omits the port.
		"crl": map[string]any{"enabled": true, "generateOnRevoke": true, "cacheDuration": crlCacheDuration,
			"idpURL": o.url() + "/1.0/crl"},
	}
}

// writeCAPair makes the root and the intermediate it signs and returns the root's DER.
func writeCAPair(o CAOptions, p func(string) string) ([]byte, error) {
	now := time.Now().Add(-time.Minute) // a little slack for clocks a bit behind
	rootKey, rootDER, err := newCACert(pkix.Name{Organization: []string{o.Name}, CommonName: o.Name + " Root CA"}, now, 1, nil, nil)
	if err != nil {
		return nil, err
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, err
	}
	intKey, intDER, err := newCACert(pkix.Name{Organization: []string{o.Name}, CommonName: o.Name + " Intermediate CA"}, now, 0, root, rootKey)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path string
		der  []byte
	}{{p(RootFile), rootDER}, {p(IntermediateFile), intDER}} {
		if err := WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.der}), 0o644); err != nil {
			return nil, err
		}
	}
	for _, k := range []struct {
		path string
		key  crypto.PrivateKey
	}{{p(RootKeyFile), rootKey}, {p(IntermediateKeyFile), intKey}} {
		block, err := pemutil.Serialize(k.key, pemutil.WithPassword(o.CAPassword))
		if err != nil {
			return nil, fmt.Errorf("encrypt %s: %w", k.path, err)
		}
		if err := WriteFile(k.path, pem.EncodeToMemory(block), 0o600); err != nil {
			return nil, err
		}
	}
	return rootDER, nil
}

// newCACert makes a CA key and certificate, self-signed when parent is nil.
func newCACert(subject pkix.Name, now time.Time, maxPathLen int, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	tpl := &x509.Certificate{
		SerialNumber: serial, Subject: subject, NotBefore: now, NotAfter: now.Add(caLifetime),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
		MaxPathLen: maxPathLen, MaxPathLenZero: maxPathLen == 0,
	}
	if parent == nil {
		parent, parentKey = tpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, &key.PublicKey, parentKey)
	return key, der, err
}

// writeTemplates writes the provisioners' templates, replacing what is there: the test
// provisioner's only when it is asked for (and a stale one goes).
func writeTemplates(dir string, withTest bool) error {
	names := []string{templateFederation, templateListener}
	if withTest {
		names = append(names, templateTestNoOIDs)
	} else if err := os.Remove(filepath.Join(dir, templateTestNoOIDs)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, name := range names {
		b, err := caTemplates.ReadFile("templates/" + name)
		if err != nil {
			return err
		}
		if err := WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// provisioners are the JWK provisioners of ca.json: federation (client certificates
// with the OIDs, 30 days, step-ca's own renewal off), gateway (the federation
// listener's server certificate) and, for tests, one whose template drops the OIDs.
func provisioners(o CAOptions, templateDir string) ([]map[string]any, error) {
	type prov struct {
		name, template string
		claims         map[string]any
	}
	fixed := map[string]any{"defaultTLSCertDuration": federationCertLifetime, "maxTLSCertDuration": federationCertLifetime}
	list := []prov{
		{FederationProvisioner, templateFederation, map[string]any{
			"defaultTLSCertDuration": federationCertLifetime,
			"maxTLSCertDuration":     federationCertLifetime,
			// The gateway asks for its own lifetime (federation.client_cert_lifetime, at
			// least 2m): specs renew and expire certificates of minutes.
			"minTLSCertDuration": "1m",
			// step-ca's own /renew and /rekey copy every extension of the old certificate
			// (our OIDs too) without the template or the grant check: renewal goes
			// through the gateway instead (SPEC §6d).
			"disableRenewal": true,
		}},
		{ListenerProvisioner, templateListener, fixed},
	}
	if o.WithTestProvisioner {
		list = append(list, prov{TestProvisioner, templateTestNoOIDs, fixed})
	}
	out := make([]map[string]any, 0, len(list))
	for _, pr := range list {
		pub, enc, err := newJWK(o.ProvisionerPassword)
		if err != nil {
			return nil, fmt.Errorf("provisioner %s: %w", pr.name, err)
		}
		out = append(out, map[string]any{
			"type": "JWK", "name": pr.name, "key": pub, "encryptedKey": enc, "claims": pr.claims,
			"options": map[string]any{"x509": map[string]any{"templateFile": filepath.Join(templateDir, pr.template)}},
		})
	}
	return out, nil
}

// newJWK makes a provisioner's P-256 signing key: its public JWK (kid the thumbprint,
// as step-ca expects) and the private JWK encrypted with password as a compact JWE,
// which is what step-ca serves to the gateway (caclient decrypts it).
func newJWK(password []byte) (jose.JSONWebKey, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return jose.JSONWebKey{}, "", err
	}
	priv := jose.JSONWebKey{Key: key, Algorithm: string(jose.ES256), Use: "sig"}
	thumb, err := priv.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, "", err
	}
	priv.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	plain, err := json.Marshal(priv)
	if err != nil {
		return jose.JSONWebKey{}, "", err
	}
	enc, err := jose.NewEncrypter(jose.A256GCM,
		jose.Recipient{Algorithm: jose.PBES2_HS256_A128KW, Key: password, PBES2Count: pbes2Count},
		(&jose.EncrypterOptions{}).WithContentType("jwk+json"))
	if err != nil {
		return jose.JSONWebKey{}, "", err
	}
	jwe, err := enc.Encrypt(plain)
	if err != nil {
		return jose.JSONWebKey{}, "", err
	}
	compact, err := jwe.CompactSerialize()
	if err != nil {
		return jose.JSONWebKey{}, "", err
	}
	return priv.Public(), compact, nil
}

// SetCAAddress points a CA at address (host:port): where ca.json makes step-ca listen,
// its CRL's distribution point, and the URL in defaults.json that `step` commands run
// against it use. It returns that URL. The process backend calls it before each start
// (a fresh port).
func SetCAAddress(stepPath, address string) (string, error) {
	url := "https://" + address
	caJSON := filepath.Join(stepPath, filepath.FromSlash(ConfigFile))
	var cfg map[string]any
	if err := readJSON(caJSON, &cfg); err != nil {
		return "", err
	}
	cfg["address"] = address
	if crl, ok := cfg["crl"].(map[string]any); ok {
		crl["idpURL"] = url + "/1.0/crl"
	}
	if err := writeJSON(caJSON, cfg); err != nil {
		return "", err
	}
	defaultsJSON := filepath.Join(stepPath, filepath.FromSlash(DefaultsFile))
	var defaults map[string]any
	if err := readJSON(defaultsJSON, &defaults); err != nil {
		return "", err
	}
	defaults["ca-url"] = url
	return url, writeJSON(defaultsJSON, defaults)
}

// Fingerprint is how an enrollment URL names a PEM root certificate (api.RootFingerprint).
func Fingerprint(pemPath string) (string, error) {
	b, err := os.ReadFile(pemPath)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "", fmt.Errorf("%s: no PEM block", pemPath)
	}
	return api.RootFingerprint(block.Bytes), nil
}
