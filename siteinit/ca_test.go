package siteinit

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"go.step.sm/crypto/pemutil"
)

// stepPBES2Count is the work factor the CA's files carry outside the tests.
var stepPBES2Count = pbes2Count

// TestMain lowers the PBKDF2 work factor: each test writes several keys, and 600,000
// rounds under -race cost seconds apiece. checkProvisionerKey still checks that a key
// carries the count it was written with.
func TestMain(m *testing.M) {
	pbes2Count = 1000
	os.Exit(m.Run())
}

func TestPBES2CountIsSteps(t *testing.T) {
	if stepPBES2Count != 600000 {
		t.Errorf("provisioner keys are sealed with %d PBKDF2 rounds, want step's 600000", stepPBES2Count)
	}
}

func testOptions(t *testing.T) CAOptions {
	return CAOptions{StepPath: filepath.Join(t.TempDir(), "step"), Name: "Mosaic work CA", DNSNames: []string{"work-ca", "localhost"},
		Address: ":9000", CAPassword: []byte("ca-pass"), ProvisionerPassword: []byte("prov-pass")}
}

type caJSON struct {
	Root, Crt, Key, Address string
	DNSNames                []string
	DB                      struct{ Type, DataSource string }
	Authority               struct {
		Provisioners []struct {
			Type, Name   string
			Key          jose.JSONWebKey
			EncryptedKey string
			Claims       map[string]any
			Options      struct{ X509 struct{ TemplateFile string } }
		}
	}
	CRL struct {
		Enabled, GenerateOnRevoke bool
		IDPURL                    string `json:"idpURL"`
	}
}

func readCA(t *testing.T, path string) caJSON {
	t.Helper()
	var cfg caJSON
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestInitCAWritesAStepCAWithOurProvisioners(t *testing.T) {
	o := testOptions(t)
	res, err := InitCA(o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.URL != "https://work-ca:9000" || len(res.Fingerprint) != 64 {
		t.Fatalf("result %+v", res)
	}
	if strings.Join(res.Provisioners, ",") != "federation,gateway" {
		t.Errorf("provisioners %v: want federation and gateway (no test provisioner unless asked)", res.Provisioners)
	}
	cfg := readCA(t, res.Config)
	if cfg.Address != ":9000" || cfg.DB.Type != "badgerv2" || cfg.Key != filepath.Join(o.StepPath, IntermediateKeyFile) {
		t.Errorf("ca.json %+v", cfg)
	}
	if !cfg.CRL.Enabled || !cfg.CRL.GenerateOnRevoke || cfg.CRL.IDPURL != "https://work-ca:9000/1.0/crl" {
		t.Errorf("the CRL is not enabled, regenerated on revocation, with its port: %+v", cfg.CRL)
	}
	fed := cfg.Authority.Provisioners[0]
	// step-ca's own /renew would copy our OIDs without the grant check (SPEC §6d).
	if fed.Claims["disableRenewal"] != true || fed.Claims["minTLSCertDuration"] != "1m" || fed.Claims["defaultTLSCertDuration"] != "720h" {
		t.Errorf("federation claims %v", fed.Claims)
	}
	tpl, err := os.ReadFile(fed.Options.X509.TemplateFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{".Token.grant_id", ".Token.subject_user_id", "1.3.6.1.4.1.99999.1", "1.3.6.1.4.1.99999.2", "clientAuth", "fail", "regexMatch"} {
		if !strings.Contains(string(tpl), must) {
			t.Errorf("federation template lacks %q", must)
		}
	}
	if strings.Contains(string(tpl), ".Insecure") {
		t.Error("federation template reads unsigned .Insecure data")
	}
	for _, p := range cfg.Authority.Provisioners {
		checkProvisionerKey(t, p.Name, p.Key, p.EncryptedKey, o.ProvisionerPassword)
	}
	checkChain(t, o)
}

// checkProvisionerKey decrypts the key as the gateway's caclient does and checks it is
// the private half of the public JWK, named by its thumbprint.
func checkProvisionerKey(t *testing.T, name string, pub jose.JSONWebKey, encrypted string, password []byte) {
	t.Helper()
	jwe, err := jose.ParseEncryptedCompact(encrypted, []jose.KeyAlgorithm{jose.PBES2_HS256_A128KW}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if p2c, _ := jwe.Header.ExtraHeaders["p2c"].(float64); int(p2c) != pbes2Count {
		t.Errorf("%s: sealed with %v PBKDF2 rounds, want %d", name, jwe.Header.ExtraHeaders["p2c"], pbes2Count)
	}
	if _, err := jwe.Decrypt([]byte("wrong")); err == nil {
		t.Fatalf("%s: the key opens with a wrong password", name)
	}
	plain, err := jwe.Decrypt(password)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var priv jose.JSONWebKey
	if err := json.Unmarshal(plain, &priv); err != nil {
		t.Fatal(err)
	}
	key, ok := priv.Key.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(pub.Key) || priv.KeyID != pub.KeyID || pub.KeyID == "" || pub.Algorithm != "ES256" {
		t.Errorf("%s: private key does not match the public JWK %+v", name, pub)
	}
}

// checkChain: the intermediate verifies under the root and its key opens with the CA
// password, as step-ca opens it.
func checkChain(t *testing.T, o CAOptions) {
	t.Helper()
	cert := func(rel string) *x509.Certificate {
		b, _ := os.ReadFile(filepath.Join(o.StepPath, rel))
		block, _ := pem.Decode(b)
		if block == nil {
			t.Fatalf("%s: no PEM", rel)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	root, inter := cert(RootFile), cert(IntermediateFile)
	if err := inter.CheckSignatureFrom(root); err != nil || !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero {
		t.Errorf("intermediate: %v (CA %v, path len %d)", err, inter.IsCA, inter.MaxPathLen)
	}
	if _, err := pemutil.Read(filepath.Join(o.StepPath, IntermediateKeyFile), pemutil.WithPassword([]byte("wrong"))); err == nil {
		t.Error("the intermediate's key opens with a wrong password")
	}
	k, err := pemutil.Read(filepath.Join(o.StepPath, IntermediateKeyFile), pemutil.WithPassword(o.CAPassword))
	if err != nil {
		t.Fatal(err)
	}
	if !k.(*ecdsa.PrivateKey).PublicKey.Equal(inter.PublicKey) {
		t.Error("the intermediate's key is not its certificate's")
	}
}

func TestInitCAKeepsAnExistingCA(t *testing.T) {
	o := testOptions(t)
	first, err := InitCA(o)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(first.Config)
	o.WithTestProvisioner = true // asking for the test provisioner adds none to a kept CA
	again, err := InitCA(o)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(again.Config)
	if again.Created || again.Fingerprint != first.Fingerprint || string(before) != string(after) {
		t.Fatalf("second run rewrote the CA: %+v then %+v", first, again)
	}
	if strings.Join(again.Provisioners, ",") != "federation,gateway" {
		t.Errorf("provisioners read back %v", again.Provisioners)
	}
}

func TestInitCARedoesACutShortRun(t *testing.T) {
	o := testOptions(t)
	first, err := InitCA(o)
	if err != nil {
		t.Fatal(err)
	}
	// A run killed before its last write leaves no ca.json: the next one starts over.
	if err := os.Remove(first.Config); err != nil {
		t.Fatal(err)
	}
	again, err := InitCA(o)
	if err != nil || !again.Created || again.Fingerprint == first.Fingerprint {
		t.Fatalf("%+v, %v", again, err)
	}
}

func TestInitCATestProvisioner(t *testing.T) {
	o := testOptions(t)
	o.WithTestProvisioner = true
	res, err := InitCA(o)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Provisioners, ",") != "federation,gateway,federation-no-oids" {
		t.Errorf("provisioners %v", res.Provisioners)
	}
	if _, err := os.Stat(filepath.Join(o.StepPath, templatesDir, templateTestNoOIDs)); err != nil {
		t.Errorf("no test template: %v", err)
	}
	// Kept with the option: fine.
	if again, err := InitCA(o); err != nil || again.Created {
		t.Fatalf("kept with the test option: %+v %v", again, err)
	}
}

func TestInitCAWritesTheTestTemplateOnlyWhenAsked(t *testing.T) {
	o := testOptions(t)
	if _, err := InitCA(o); err != nil {
		t.Fatal(err)
	}
	noOIDs := filepath.Join(o.StepPath, templatesDir, templateTestNoOIDs)
	if _, err := os.Stat(noOIDs); err == nil {
		t.Fatal("the test template is there without the test option")
	}
	// A stale one (an older release wrote it always) goes on the next run.
	if err := os.WriteFile(noOIDs, []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := InitCA(o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(noOIDs); err == nil {
		t.Error("a kept CA keeps a stale test template")
	}
}

// The templates are code: a kept CA gets this release's, whatever its folder holds.
func TestInitCARewritesTheTemplatesOfAKeptCA(t *testing.T) {
	o := testOptions(t)
	if _, err := InitCA(o); err != nil {
		t.Fatal(err)
	}
	fed := filepath.Join(o.StepPath, templatesDir, templateFederation)
	want, _ := os.ReadFile(fed)
	if err := os.WriteFile(fed, []byte(`{"subject": {{ toJson .Subject }}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(o.StepPath, templatesDir, templateListener)); err != nil {
		t.Fatal(err)
	}
	if _, err := InitCA(o); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{templateFederation, templateListener} {
		got, err := os.ReadFile(filepath.Join(o.StepPath, templatesDir, name))
		embedded, _ := caTemplates.ReadFile("templates/" + name)
		if err != nil || string(got) != string(embedded) {
			t.Errorf("%s not rewritten: %v", name, err)
		}
	}
	if b, _ := os.ReadFile(fed); string(b) != string(want) {
		t.Error("the federation template differs from the first run's")
	}
}

// editCA rewrites the kept CA's ca.json with edit applied to its JSON.
func editCA(t *testing.T, o CAOptions, edit func(cfg map[string]any)) {
	t.Helper()
	path := filepath.Join(o.StepPath, ConfigFile)
	var cfg map[string]any
	if err := readJSON(path, &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	if err := writeJSON(path, cfg); err != nil {
		t.Fatal(err)
	}
}

func provisionerList(cfg map[string]any) []any {
	return cfg["authority"].(map[string]any)["provisioners"].([]any)
}

// A kept CA must open with the passwords given and hold only the provisioners asked
// for; each check, broken once, refuses and writes nothing.
func TestInitCARefusesAKeptCAThatDoesNotMatch(t *testing.T) {
	for name, tc := range map[string]struct {
		break_ func(t *testing.T, o *CAOptions)
		want   string
	}{
		"wrong CA password": {func(t *testing.T, o *CAOptions) { o.CAPassword = []byte("other") }, "does not open with the CA password"},
		"wrong provisioner password": {func(t *testing.T, o *CAOptions) { o.ProvisionerPassword = []byte("other") },
			`"federation" provisioner's key: it does not open with the provisioner password`},
		"test provisioner without the option": {func(t *testing.T, o *CAOptions) {
			editCA(t, *o, func(cfg map[string]any) {
				provs := provisionerList(cfg)
				test := map[string]any{}
				for k, v := range provs[0].(map[string]any) {
					test[k] = v
				}
				test["name"] = TestProvisioner
				cfg["authority"].(map[string]any)["provisioners"] = append(provs, test)
			})
		}, "test-only provisioner"},
		"no federation provisioner": {func(t *testing.T, o *CAOptions) {
			editCA(t, *o, func(cfg map[string]any) { provisionerList(cfg)[0].(map[string]any)["name"] = "other" })
		}, `no "federation" provisioner`},
		"no listener provisioner": {func(t *testing.T, o *CAOptions) {
			editCA(t, *o, func(cfg map[string]any) {
				cfg["authority"].(map[string]any)["provisioners"] = provisionerList(cfg)[:1]
			})
		}, `no "gateway" provisioner`},
		"provisioner key swapped": {func(t *testing.T, o *CAOptions) {
			editCA(t, *o, func(cfg map[string]any) {
				provs := provisionerList(cfg)
				provs[0].(map[string]any)["key"] = provs[1].(map[string]any)["key"]
			})
		}, "not the private half"},
		"provisioner key not a JWE": {func(t *testing.T, o *CAOptions) {
			editCA(t, *o, func(cfg map[string]any) { provisionerList(cfg)[1].(map[string]any)["encryptedKey"] = "plain" })
		}, `"gateway" provisioner's key: no encrypted key`},
		"intermediate key not the certificate's": {func(t *testing.T, o *CAOptions) {
			editCA(t, *o, func(cfg map[string]any) { cfg["key"] = filepath.Join(o.StepPath, RootKeyFile) })
		}, "is not the key of its certificate"},
		"no intermediate in ca.json": {func(t *testing.T, o *CAOptions) {
			editCA(t, *o, func(cfg map[string]any) { delete(cfg, "crt") })
		}, "names no intermediate"},
	} {
		t.Run(name, func(t *testing.T) {
			o := testOptions(t)
			if _, err := InitCA(o); err != nil {
				t.Fatal(err)
			}
			fed := filepath.Join(o.StepPath, templatesDir, templateFederation)
			if err := os.WriteFile(fed, []byte("edited"), 0o600); err != nil {
				t.Fatal(err)
			}
			tc.break_(t, &o)
			before, _ := os.ReadFile(filepath.Join(o.StepPath, ConfigFile))
			res, err := InitCA(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || res.Created {
				t.Fatalf("kept: %+v, %v (want %q)", res, err, tc.want)
			}
			for _, secret := range []string{"ca-pass", "prov-pass", "other"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error quotes a password: %v", err)
				}
			}
			if !strings.Contains(err.Error(), "move the CA away") && !strings.Contains(err.Error(), "names no intermediate") {
				t.Errorf("the error says no way out: %v", err)
			}
			after, _ := os.ReadFile(filepath.Join(o.StepPath, ConfigFile))
			tpl, _ := os.ReadFile(fed)
			if string(before) != string(after) || string(tpl) != "edited" {
				t.Error("a refused CA was written to")
			}
		})
	}
}

func TestCAExists(t *testing.T) {
	o := testOptions(t)
	if kept, err := CAExists(o.StepPath); kept || err != nil {
		t.Fatalf("before: %v %v", kept, err)
	}
	if _, err := InitCA(o); err != nil {
		t.Fatal(err)
	}
	if kept, err := CAExists(o.StepPath); !kept || err != nil {
		t.Fatalf("after: %v %v", kept, err)
	}
}

func TestInitCARefusesBadOptions(t *testing.T) {
	for name, edit := range map[string]func(*CAOptions){
		"no steppath":    func(o *CAOptions) { o.StepPath = "" },
		"no name":        func(o *CAOptions) { o.Name = "" },
		"no dns":         func(o *CAOptions) { o.DNSNames = nil },
		"bad address":    func(o *CAOptions) { o.Address = "9000" },
		"empty password": func(o *CAOptions) { o.CAPassword = nil },
	} {
		t.Run(name, func(t *testing.T) {
			o := testOptions(t)
			edit(&o)
			if _, err := InitCA(o); err == nil {
				t.Fatal("accepted")
			}
			if o.StepPath != "" {
				if _, err := os.Stat(o.StepPath); err == nil {
					t.Error("wrote files before refusing")
				}
			}
		})
	}
}

func TestInitCAFailsOnAnUnwritableStepPath(t *testing.T) {
	o := testOptions(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	o.StepPath = filepath.Join(file, "step") // under a regular file
	if _, err := InitCA(o); err == nil {
		t.Fatal("no error")
	}
}

func TestSetCAAddress(t *testing.T) {
	o := testOptions(t)
	res, err := InitCA(o)
	if err != nil {
		t.Fatal(err)
	}
	url, err := SetCAAddress(o.StepPath, "127.0.0.1:4242")
	if err != nil || url != "https://127.0.0.1:4242" {
		t.Fatalf("url %q, err %v", url, err)
	}
	cfg := readCA(t, res.Config)
	if cfg.Address != "127.0.0.1:4242" || cfg.CRL.IDPURL != "https://127.0.0.1:4242/1.0/crl" || len(cfg.Authority.Provisioners) != 2 {
		t.Errorf("ca.json %+v", cfg)
	}
	var defaults map[string]string
	if err := readJSON(filepath.Join(o.StepPath, DefaultsFile), &defaults); err != nil {
		t.Fatal(err)
	}
	if defaults["ca-url"] != url || defaults["fingerprint"] != res.Fingerprint {
		t.Errorf("defaults.json %v", defaults)
	}
}
