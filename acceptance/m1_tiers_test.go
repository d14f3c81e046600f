package acceptance

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process"
)

// doctorReport is `gateway doctor --json`.
type doctorReport struct {
	Tier     string `json:"tier"`
	Overall  string `json:"overall"`
	Services []struct {
		Name      string `json:"name"`
		Status    string `json:"status"`
		LatencyMS int64  `json:"latency_ms"`
		Detail    string `json:"detail"`
	} `json:"services"`
	PGVector struct {
		Installed bool   `json:"installed"`
		Version   string `json:"version"`
	} `json:"pgvector"`
	Problems []string `json:"problems"`
}

func doctor(config string) (*gexec.Session, doctorReport) {
	GinkgoHelper()
	s := gateway("doctor", "--json", "--config", config)
	var r doctorReport
	Expect(json.Unmarshal(s.Out.Contents(), &r)).To(Succeed(), string(s.Out.Contents()))
	return s, r
}

// serveRefused runs `gateway serve` expecting it to refuse to start within 10 s, and
// returns what it printed.
func serveRefused(config string) string {
	GinkgoHelper()
	start := time.Now()
	s := gateway("serve", "--config", config)
	Expect(s.ExitCode()).NotTo(Equal(0))
	Expect(time.Since(start)).To(BeNumerically("<=", 10*time.Second))
	return string(s.Out.Contents()) + string(s.Err.Contents())
}

// noSecrets checks output holds neither the password nor the full DSN of a URL.
func noSecrets(output string, dsns ...string) {
	GinkgoHelper()
	for _, dsn := range dsns {
		Expect(output).NotTo(ContainSubstring(dsn))
		if i, j := strings.Index(dsn, "://"), strings.Index(dsn, "@"); i >= 0 && j > i {
			userinfo := dsn[i+3 : j]
			if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
				Expect(output).NotTo(ContainSubstring(pw), "a password leaked")
			}
		}
	}
}

var _ = Describe("Tiers: refusing to start", Label("M1"), Serial, func() {
	var work *world.Site
	BeforeEach(func() {
		Expect(shared).NotTo(BeNil(), "Serial specs run on process 1, which owns the world")
		work = shared.Site("work")
	})

	It("[M1-2] refuses within 10 s when PostgreSQL is down, naming the service and the fix, with no secret", func(ctx SpecContext) {
		Expect(work.Postgres.Stop(ctx)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(work.Postgres.Start(ctx)).To(Succeed()) })
		out := serveRefused(site("work").Config)
		Expect(out).To(ContainSubstring("PostgreSQL"))
		Expect(out).To(ContainSubstring("unreachable"))
		Expect(out).To(ContainSubstring("start PostgreSQL"))
		noSecrets(out, site("work").PostgresURL)
	}, SpecTimeout(Timeouts.CLI))

	It("[M1-3] refuses within 10 s when Valkey is down, naming the service and the fix", func(ctx SpecContext) {
		Expect(work.Valkey.Stop(ctx)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(work.Valkey.Start(ctx)).To(Succeed()) })
		out := serveRefused(site("work").Config)
		Expect(out).To(ContainSubstring("Valkey"))
		Expect(out).To(ContainSubstring("start valkey-server"))
		Expect(out).NotTo(ContainSubstring("PostgreSQL at"), "PostgreSQL is up: only Valkey is named")
		noSecrets(out, site("work").PostgresURL)
	}, SpecTimeout(Timeouts.CLI))

	It("[M1-6] doctor --json reports green, then red with exit 1 when a service stops", func(ctx SpecContext) {
		s, r := doctor(site("work").Config)
		Expect(s.ExitCode()).To(Equal(0))
		Expect(r.Tier).To(Equal("federated"))
		Expect(r.Overall).To(Equal("green"))
		Expect(r.PGVector.Installed).To(BeTrue())
		Expect(r.PGVector.Version).NotTo(BeEmpty())
		Expect(r.Services).To(ConsistOf(
			And(HaveField("Name", "postgres"), HaveField("Status", "up")),
			And(HaveField("Name", "valkey"), HaveField("Status", "up"))))

		Expect(work.Valkey.Stop(ctx)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(work.Valkey.Start(ctx)).To(Succeed()) })
		s, r = doctor(site("work").Config)
		Expect(s.ExitCode()).To(Equal(1))
		Expect(r.Overall).To(Equal("red"))
		Expect(r.Services).To(ContainElement(And(HaveField("Name", "valkey"), HaveField("Status", "down"))))
		noSecrets(string(s.Out.Contents()), site("work").PostgresURL)
	}, SpecTimeout(Timeouts.CLI))
})

var _ = Describe("Tiers: pgvector", Label("M1"), func() {
	It("[M1-4a] tells 'pgvector is not installed on the server' on a real cluster without the vector files", func(ctx SpecContext) {
		By("copying the PostgreSQL installation without pgvector's files")
		bin := process.PostgresBinDir()
		Expect(bin).NotTo(BeEmpty())
		major := filepath.Base(filepath.Dir(bin))
		root, err := os.MkdirTemp("", "mosaic-pg-novector-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(os.RemoveAll, root)
		Expect(os.Chmod(root, 0o755)).To(Succeed())
		for _, dir := range []string{"/usr/lib/postgresql/" + major, "/usr/share/postgresql/" + major} {
			Expect(os.MkdirAll(filepath.Join(root, filepath.Dir(dir)), 0o755)).To(Succeed())
			out, err := exec.Command("cp", "-a", dir, filepath.Join(root, dir)).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
		}
		removed, _ := filepath.Glob(filepath.Join(root, "usr/share/postgresql", major, "extension", "vector*"))
		lib, _ := filepath.Glob(filepath.Join(root, "usr/lib/postgresql", major, "lib", "vector*"))
		Expect(removed).NotTo(BeEmpty())
		for _, f := range append(removed, lib...) {
			Expect(os.RemoveAll(f)).To(Succeed())
		}

		By("booting a real cluster from the copy")
		w, pg, err := world.StandalonePostgres(ctx, world.Options{Backend: process.New(process.Config{
			PostgresBinDir: filepath.Join(root, "usr/lib/postgresql", major, "bin")})})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(w.Down)

		cfg := siteConfig(site("work"), map[string]any{"storage": map[string]any{"postgres_url_file": secretFile(site("work"), pg.URL)}})
		out := serveRefused(cfg)
		Expect(out).To(ContainSubstring("pgvector is not installed on the PostgreSQL server"))
		Expect(out).NotTo(ContainSubstring("may not CREATE EXTENSION"))
		noSecrets(out, pg.URL)
		s, r := doctor(cfg)
		Expect(s.ExitCode()).To(Equal(1))
		Expect(r.PGVector.Installed).To(BeFalse())
	}, SpecTimeout(Timeouts.Boot))

	It("[M1-4b] tells 'this role may not CREATE EXTENSION' for a real non-superuser role", func(ctx SpecContext) {
		dsn := nonSuperuserDatabase(ctx)

		cfg := siteConfig(site("work"), map[string]any{"storage": map[string]any{"postgres_url_file": secretFile(site("work"), dsn)}})
		out := serveRefused(cfg)
		Expect(out).To(ContainSubstring("may not CREATE EXTENSION"))
		Expect(out).NotTo(ContainSubstring("is not installed on the PostgreSQL server"))
		noSecrets(out, dsn, site("work").PostgresURL)
	}, SpecTimeout(Timeouts.CLI))
})

var _ = Describe("Tiers: configuration errors", Label("M1"), func() {
	DescribeTable("[M1-7] refuse a bad config with the field named",
		func(body, want string) {
			dir := GinkgoT().TempDir()
			path := filepath.Join(dir, "gateway.json")
			Expect(os.WriteFile(path, []byte(body), 0o600)).To(Succeed())
			s := gateway("doctor", "--config", path)
			Expect(s.ExitCode()).NotTo(Equal(0))
			Expect(string(s.Err.Contents())).To(ContainSubstring(want))
		},
		Entry("unknown tier", `{"tier": "cluster"}`, `field "tier": unknown tier "cluster"`),
		Entry("unknown field", `{"tier": "local", "colour": "blue"}`, `unknown field "colour"`),
		Entry("federated without ca.url", `{"tier": "federated", "site": "x", "listen": {"api": "127.0.0.1:1", "federation": "127.0.0.1:2"},
			"federation": {"public_url": "https://127.0.0.1:2"}, "storage": {"postgres_url_file": "pg"}, "valkey": {"url": "redis://127.0.0.1:1/0"},
			"ca": {"root": "r", "provisioner": "federation", "provisioner_password_file": "p"}, "sealing_key_file": "k"}`, `field "ca.url"`),
		Entry("a secret inline", `{"tier": "standalone", "site": "x", "listen": {"api": "127.0.0.1:1"}, "storage": {"postgres_url": "postgres://u:p@h/db"}}`, `unknown field "postgres_url"`),
	)

	It("[M1-7] accepts the deprecated tier 'team' as standalone, with a warning", func() {
		cfg := siteConfig(site("work"), map[string]any{"tier": "team", "valkey": nil, "ca": nil, "federation": nil,
			"listen": map[string]any{"federation": nil}})
		s := gateway("doctor", "--json", "--config", cfg)
		Expect(s.ExitCode()).To(Equal(0), string(s.Err.Contents()))
		Expect(string(s.Err.Contents())).To(ContainSubstring(`tier \"team\" is deprecated`))
		var r doctorReport
		Expect(json.Unmarshal(s.Out.Contents(), &r)).To(Succeed())
		Expect(r.Tier).To(Equal("standalone"))
	})
})

// startGateway runs `gateway serve` in the background until the spec ends and waits
// for /readyz.
func startGateway(config, apiURL string) {
	GinkgoHelper()
	cmd := exec.Command(the.GatewayBin, "serve", "--config", config)
	s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { s.Terminate().Wait(Timeouts.Teardown) })
	Eventually(func() int {
		resp, err := http.Get(apiURL + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}).WithTimeout(Timeouts.Readiness).WithPolling(Timeouts.Poll).Should(Equal(http.StatusOK))
	Expect(s.ExitCode()).To(Equal(-1), "the gateway exited")
}

var _ = Describe("Tiers: local and standalone", Label("M1"), func() {
	// seedAndList loads seed/work.json through the CLI, serves, and reads the demo
	// user's tasks back through the local API.
	seedAndList := func(cfg map[string]any, dir string) (string, listBody) {
		addr := freeAddr()
		cfg["listen"] = map[string]any{"api": addr}
		path := filepath.Join(dir, "gateway.json")
		writeJSONFile(path, cfg)
		root, err := world.ModuleRoot()
		Expect(err).NotTo(HaveOccurred())
		s := gateway("--config", path, "seed", "load", "--json", filepath.Join(root, "seed", "work.json"))
		Expect(s.ExitCode()).To(Equal(0), string(s.Err.Contents()))
		var seeded struct {
			Users []struct{ Email, Token string }
		}
		Expect(json.Unmarshal(s.Out.Contents(), &seeded)).To(Succeed())
		Expect(seeded.Users[0].Token).To(HavePrefix("mos_"))

		By("loading the same seed again: idempotent, no new tokens")
		again := gateway("seed", "load", "--json", filepath.Join(root, "seed", "work.json"), "--config", path)
		Expect(again.ExitCode()).To(Equal(0))
		Expect(string(again.Out.Contents())).NotTo(ContainSubstring("mos_"))

		base := "http://" + addr
		startGateway(path, base)
		var ready struct{ Checks []struct{ Name string } }
		Expect(apiCall(http.MethodGet, base+"/readyz", "", nil, &ready)).To(Equal(http.StatusOK))
		Expect(ready.Checks).To(HaveLen(1), "only storage: no Valkey, no federation")
		Expect(ready.Checks[0].Name).To(Equal("storage"))
		var list listBody
		Expect(apiCall(http.MethodGet, base+"/api/v1/tasks?source=all&limit=1000", seeded.Users[0].Token, nil, &list)).To(Equal(http.StatusOK))
		return base, list
	}

	It("[M1-10a] the local tier (SQLite, no config beyond a path) seeds, serves and lists", func() {
		dir := GinkgoT().TempDir()
		_, list := seedAndList(map[string]any{"tier": "local", "storage": map[string]any{"sqlite_path": filepath.Join(dir, "data", "gateway.db")}}, dir)
		Expect(list.Items).NotTo(BeEmpty())
		Expect(list.Partial).To(BeFalse())
		Expect(list.Sources).To(HaveLen(1))
		for _, it := range list.Items {
			Expect(it["_source"]).To(Equal("local"))
		}
		Expect(filepath.Join(dir, "data", "gateway.db")).To(BeARegularFile())
		st, err := os.Stat(filepath.Join(dir, "data", "sealing.key"))
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mode().Perm()).To(Equal(os.FileMode(0o600)))
	})

	It("[M1-10b] the standalone tier (PostgreSQL without pgvector in its database) seeds, serves and lists", func(ctx SpecContext) {
		admin := sqlConn(ctx, site("work").PostgresURL)
		db := "standalone_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
		_, err := admin.Exec(ctx, "CREATE DATABASE "+db)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx context.Context) { _, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
		dsn := strings.Replace(site("work").PostgresURL, "/gateway?", "/"+db+"?", 1)
		dir := GinkgoT().TempDir()
		_, list := seedAndList(map[string]any{"tier": "standalone", "site": "office",
			"storage":          map[string]any{"postgres_url_file": secretFile(site("work"), dsn)},
			"sealing_key_file": filepath.Join(site("work").Dir, "secrets", "sealing.key")}, dir)
		Expect(list.Items).NotTo(BeEmpty())

		By("keeping embeddings as real[] where the database has no vector extension")
		conn := sqlConn(ctx, dsn)
		var udt string
		Expect(conn.QueryRow(ctx, `SELECT udt_name FROM information_schema.columns WHERE table_name = 'memories' AND column_name = 'embedding'`).Scan(&udt)).To(Succeed())
		Expect(udt).To(Equal("_float4"))
	}, SpecTimeout(Timeouts.CLI))
})
