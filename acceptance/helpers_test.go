package acceptance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"

	"path/filepath"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/mosaic-federation/mosaic/harness/world"
)

// run starts a binary like a user would, echoes it to the spec's output, and waits
// for it to exit (bounded); the caller checks the exit code.
func run(env []string, bin string, args ...string) *gexec.Session {
	GinkgoHelper()
	By("running: " + bin[strings.LastIndex(bin, "/")+1:] + " " + strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	Eventually(s).WithTimeout(Timeouts.CLI).Should(gexec.Exit())
	return s
}

// getJSON GETs url and decodes a JSON body into v; it returns the status code.
func getJSON(ctx context.Context, client *http.Client, url string, v any) int {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	if v != nil {
		Expect(json.NewDecoder(resp.Body).Decode(v)).To(Succeed())
	}
	return resp.StatusCode
}

// caClient trusts one site's CA root and nothing else.
func caClient(rootPath string) *http.Client {
	GinkgoHelper()
	pem, err := os.ReadFile(rootPath)
	Expect(err).NotTo(HaveOccurred())
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM(pem)).To(BeTrue())
	return &http.Client{Timeout: Timeouts.Request, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// gateway runs the real gateway CLI.
func gateway(args ...string) *gexec.Session {
	GinkgoHelper()
	return run(nil, the.GatewayBin, args...)
}

// siteConfig writes a gateway.json for a site — its standard config with overrides
// deep-merged — into the site's folder (relative paths in it resolve there) and
// returns the path.
func siteConfig(s world.SiteInfo, overrides map[string]any) string {
	GinkgoHelper()
	var cfg map[string]any
	b, err := os.ReadFile(s.Config)
	Expect(err).NotTo(HaveOccurred())
	Expect(json.Unmarshal(b, &cfg)).To(Succeed())
	cfg = mergeMaps(cfg, overrides)
	path := filepath.Join(s.Dir, fmt.Sprintf("spec-%d-%s.json", GinkgoParallelProcess(), uuid.NewString()[:8]))
	writeJSONFile(path, cfg)
	DeferCleanup(os.Remove, path)
	return path
}

func writeJSONFile(path string, v any) {
	GinkgoHelper()
	b, err := json.MarshalIndent(v, "", "  ")
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(path, b, 0o600)).To(Succeed())
}

func mergeMaps(dst, src map[string]any) map[string]any {
	for k, v := range src {
		if sub, ok := v.(map[string]any); ok {
			if d, ok := dst[k].(map[string]any); ok {
				dst[k] = mergeMaps(d, sub)
				continue
			}
		}
		if v == nil {
			delete(dst, k)
			continue
		}
		dst[k] = v
	}
	return dst
}

// secretFile writes a secret (a database URL, say) into a 0600 file of the site.
func secretFile(s world.SiteInfo, content string) string {
	GinkgoHelper()
	path := filepath.Join(s.Dir, "secrets", fmt.Sprintf("spec-%d-%s", GinkgoParallelProcess(), uuid.NewString()[:8]))
	Expect(os.WriteFile(path, []byte(content+"\n"), 0o600)).To(Succeed())
	DeferCleanup(os.Remove, path)
	return path
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr() string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().String()
}

// apiCall sends a request to a local API with a bearer token (none when empty) and
// decodes a JSON answer into out (when not nil); it returns the status code.
func apiCall(method, url, token string, body io.Reader, out any) int {
	GinkgoHelper()
	return call(&http.Client{Timeout: Timeouts.Request}, method, url, token, body, out)
}

// call sends one request (with a bearer token when given) and decodes a JSON answer
// into out (when not nil); it returns the status code.
func call(client *http.Client, method, url, token string, body io.Reader, out any) int {
	GinkgoHelper()
	req, err := http.NewRequest(method, url, body)
	Expect(err).NotTo(HaveOccurred())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	if out != nil {
		Expect(json.NewDecoder(resp.Body).Decode(out)).To(Succeed())
	}
	return resp.StatusCode
}

// listBody decodes list responses without knowing the resource.
type listBody struct {
	Items      []map[string]any `json:"items"`
	NextCursor string           `json:"next_cursor"`
	Partial    bool             `json:"_partial"`
	Sources    []struct {
		Name, Status, Error string
	} `json:"sources"`
}

type errorBody struct {
	Error struct {
		Code, Message string
		RequestID     string `json:"request_id"`
	} `json:"error"`
}

// sqlConn connects to a database (closed when the spec ends).
func sqlConn(ctx context.Context, dsn string) *pgx.Conn {
	GinkgoHelper()
	conn, err := pgx.Connect(ctx, dsn)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { conn.Close(context.Background()) })
	return conn
}

// nonSuperuserDatabase makes, on the work cluster, a real non-superuser role owning an
// empty database of its own (pgvector is installed on the server but this role may not
// create it), and returns that role's URL for the database.
func nonSuperuserDatabase(ctx context.Context) string {
	GinkgoHelper()
	admin := sqlConn(ctx, site("work").PostgresURL)
	suffix := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	role, db, password := "app_"+suffix, "appdb_"+suffix, "pw-"+uuid.NewString()
	_, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN NOSUPERUSER PASSWORD '"+password+"'")
	Expect(err).NotTo(HaveOccurred())
	_, err = admin.Exec(ctx, "CREATE DATABASE "+db+" OWNER "+role)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx context.Context) {
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		_, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+role)
	})
	u, err := url.Parse(site("work").PostgresURL)
	Expect(err).NotTo(HaveOccurred())
	u.User, u.Path = url.UserPassword(role, password), "/"+db
	return u.String()
}

// runStdin is run with the given standard input.
func runStdin(stdin, bin string, args ...string) *gexec.Session {
	GinkgoHelper()
	By("running: " + filepath.Base(bin) + " " + strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	Eventually(s).WithTimeout(Timeouts.CLI).Should(gexec.Exit())
	return s
}

func bgCtx() context.Context { return context.Background() }

// csrWith makes a CSR from a template (with a fresh key).
func csrWith(tpl *x509.CertificateRequest) string {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	der, err := x509.CreateCertificateRequest(rand.Reader, tpl, key)
	Expect(err).NotTo(HaveOccurred())
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// output runs a program and returns its standard output.
func output(bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = GinkgoWriter
	return cmd.Output()
}
