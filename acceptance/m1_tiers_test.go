package acceptance

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
	"github.com/mosaic-federation/mosaic/harness/world/process"
)

// doctor runs `gateway doctor --json` and decodes its report, whatever the exit code.
func doctor(config string) (*gexec.Session, api.DoctorReport) {
	GinkgoHelper()
	s := gateway("doctor", "--json", "--config", config)
	var r api.DoctorReport
	decodeOut(s, &r)
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

	It("[M1-6] doctor --json reports green, yellow (exit 0) without Valkey, and red with exit 1 without PostgreSQL", func(ctx SpecContext) {
		s, r := doctor(site("work").Config)
		Expect(s.ExitCode()).To(Equal(0))
		Expect(r.Tier).To(Equal("federated"))
		Expect(r.Overall).To(Equal("green"))
		Expect(r.PGVector.Installed).To(BeTrue())
		Expect(r.PGVector.Version).NotTo(BeEmpty())
		Expect(r.Services).To(ConsistOf(
			And(HaveField("Name", "postgres"), HaveField("Status", "up")),
			And(HaveField("Name", "valkey"), HaveField("Status", "up")),
			And(HaveField("Name", "step-ca"), HaveField("Status", "up"))))

		By("stopping Valkey: a running gateway limits in memory, so yellow")
		Expect(work.Valkey.Stop(ctx)).To(Succeed())
		s, r = doctor(site("work").Config)
		Expect(work.Valkey.Start(ctx)).To(Succeed())
		Expect(s.ExitCode()).To(Equal(0))
		Expect(r.Overall).To(Equal("yellow"))
		Expect(r.Services).To(ContainElement(And(HaveField("Name", "valkey"), HaveField("Status", "down"))))

		By("stopping PostgreSQL: red, exit 1")
		Expect(work.Postgres.Stop(ctx)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(work.Postgres.Start(ctx)).To(Succeed()) })
		s, r = doctor(site("work").Config)
		Expect(s.ExitCode()).To(Equal(1))
		Expect(r.Overall).To(Equal("red"))
		Expect(r.Services).To(ContainElement(And(HaveField("Name", "postgres"), HaveField("Status", "down"))))
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
		var r api.DoctorReport
		decodeOut(s, &r)
		Expect(r.Tier).To(Equal("standalone"))
	})
})

var _ = Describe("Tiers: local and standalone", Label("M1"), func() {
	// seedAndList loads seed/work.json through the CLI, serves, and reads the demo
	// user's tasks back through the local API.
	seedAndList := func(cfg map[string]any, dir string) api.ListOf[map[string]any] {
		addr := freeAddr()
		cfg["listen"] = map[string]any{"api": addr}
		path := filepath.Join(dir, "gateway.json")
		writeJSONFile(path, cfg)
		root, err := world.ModuleRoot()
		Expect(err).NotTo(HaveOccurred())
		seeded := seedLoad(path, filepath.Join(root, "seed", "work.json"))
		Expect(seeded.Users[0].Token).To(HavePrefix("mos_"))

		By("loading the same seed again: idempotent, no new tokens")
		again := gateway("seed", "load", "--json", filepath.Join(root, "seed", "work.json"), "--config", path)
		Expect(again.ExitCode()).To(Equal(0))
		Expect(string(again.Out.Contents())).NotTo(ContainSubstring("mos_"))

		base := "http://" + addr
		startGateway(path, base)
		var ready api.Health
		Expect(call(http.MethodGet, base+"/readyz", &ready)).To(Equal(http.StatusOK))
		Expect(ready.Checks).To(HaveLen(1), "only storage: no Valkey, no federation")
		Expect(ready.Checks[0].Name).To(Equal("storage"))
		var list api.ListOf[map[string]any]
		Expect(call(http.MethodGet, base+"/api/v1/tasks?source=all&limit=1000", &list, bearer(seeded.Users[0].Token))).To(Equal(http.StatusOK))
		return list
	}

	It("[M1-10a] the local tier (SQLite, no config beyond a path) seeds, serves and lists", func() {
		dir := GinkgoT().TempDir()
		list := seedAndList(map[string]any{"tier": "local", "storage": map[string]any{"sqlite_path": filepath.Join(dir, "data", "gateway.db")}}, dir)
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
		dsn := freshDatabase(ctx, "standalone")
		dir := GinkgoT().TempDir()
		list := seedAndList(map[string]any{"tier": "standalone", "site": "office",
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
