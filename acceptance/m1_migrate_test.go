package acceptance

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

// seedCounts are the row counts a seed file makes.
func seedCounts(file string) map[string]int64 {
	GinkgoHelper()
	b, err := os.ReadFile(file)
	Expect(err).NotTo(HaveOccurred())
	var f map[string][]map[string]any
	Expect(json.Unmarshal(b, &f)).To(Succeed())
	members := 0
	for _, t := range f["teams"] {
		members += len(t["members"].([]any))
	}
	return map[string]int64{"users": int64(len(f["users"])), "teams": int64(len(f["teams"])), "team_members": int64(members),
		"tasks": int64(len(f["tasks"])), "notes": int64(len(f["notes"])), "memories": int64(len(f["memories"])),
		"credentials": int64(len(f["credentials"]))}
}

func tableCounts(ctx SpecContext, dsn string) map[string]int64 {
	GinkgoHelper()
	conn := sqlConn(ctx, dsn)
	out := map[string]int64{}
	for _, t := range []string{"users", "teams", "team_members", "tasks", "notes", "memories", "credentials"} {
		var n int64
		Expect(conn.QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&n)).To(Succeed())
		out[t] = n
	}
	return out
}

func publicTables(ctx SpecContext, dsn string) int {
	GinkgoHelper()
	var n int
	Expect(sqlConn(ctx, dsn).QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&n)).To(Succeed())
	return n
}

func migrate(config, targetFile string, extra ...string) *gexec.Session {
	GinkgoHelper()
	return gateway(append([]string{"storage", "migrate-tier", "--config", config, "--to", "federated",
		"--target-postgres-url-file", targetFile}, extra...)...)
}

func fileSum(path string) [32]byte {
	GinkgoHelper()
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	return sha256.Sum256(b)
}

// readBack boots a federated gateway of the work site on the migrated database and
// lists the demo user's tasks through the local API.
func readBack(targetFile, token string) []map[string]any {
	GinkgoHelper()
	addr := freeAddr()
	cfg := siteConfig(site("work"), map[string]any{"listen": map[string]any{"api": addr, "federation": freeAddr()},
		"storage": map[string]any{"postgres_url_file": targetFile}})
	startGateway(cfg, "http://"+addr)
	return listAll("http://"+addr, token, "tasks", 200)
}

var _ = Describe("Tier migration", Label("M1"), func() {
	var root, workSeed, homeSeed string
	BeforeEach(func() {
		var err error
		root, err = world.ModuleRoot()
		Expect(err).NotTo(HaveOccurred())
		workSeed, homeSeed = filepath.Join(root, "seed", "work.json"), filepath.Join(root, "seed", "home.json")
	})

	It("[M1-8] migrates local -> federated: dry run writes nothing, counts and samples equal, re-runs idempotent, concurrent runs serialised, the source untouched", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		dbPath := filepath.Join(dir, "data", "gateway.db")
		config := filepath.Join(dir, "gateway.json")
		writeJSONFile(config, map[string]any{"tier": "local", "storage": map[string]any{"sqlite_path": dbPath}})
		token := seedLoad(config, workSeed).Users[0].Token
		before := fileSum(dbPath)

		target := freshDatabase(ctx, "migrated")
		targetFile := secretFile(site("work"), target)

		By("dry run: per-table counts, nothing written, not even the schema")
		dry := migrate(config, targetFile, "--dry-run", "--json")
		Expect(dry.ExitCode()).To(Equal(0), string(dry.Err.Contents()))
		var rep api.MigrateReport
		decodeOut(dry, &rep)
		Expect(rep.DryRun).To(BeTrue())
		want := seedCounts(workSeed)
		for _, t := range rep.Tables {
			Expect(t.Rows).To(Equal(want[t.Table]), t.Table)
		}
		Expect(publicTables(ctx, target)).To(BeZero())

		By("refusing to ask without a terminal")
		noTTY := migrate(config, targetFile)
		Expect(noTTY.ExitCode()).NotTo(Equal(0))
		Expect(string(noTTY.Err.Contents())).To(ContainSubstring("--yes"))
		Expect(publicTables(ctx, target)).To(BeZero())

		By("migrating")
		run := migrate(config, targetFile, "--yes", "--json")
		Expect(run.ExitCode()).To(Equal(0), string(run.Err.Contents()))
		decodeOut(run, &rep)
		Expect(rep.Verified).To(BeTrue())
		Expect(tableCounts(ctx, target)).To(Equal(want))
		noSecrets(string(run.Out.Contents())+string(run.Err.Contents()), target)

		By("comparing sampled rows with the seed, field by field")
		var seed struct {
			Tasks []struct {
				ID, Title, Status string
				CreatedAt         string `json:"created_at"`
			} `json:"tasks"`
		}
		b, _ := os.ReadFile(workSeed)
		Expect(json.Unmarshal(b, &seed)).To(Succeed())
		conn := sqlConn(ctx, target)
		for _, i := range []int{0, 7, 21, len(seed.Tasks) - 1} {
			tk := seed.Tasks[i]
			var title, status, created string
			Expect(conn.QueryRow(ctx, `SELECT title, status, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') FROM tasks WHERE id = $1`, tk.ID).
				Scan(&title, &status, &created)).To(Succeed())
			Expect([]string{title, status, created}).To(Equal([]string{tk.Title, tk.Status, tk.CreatedAt}))
		}
		var udt string
		Expect(conn.QueryRow(ctx, `SELECT udt_name FROM information_schema.columns WHERE table_name = 'memories' AND column_name = 'embedding'`).Scan(&udt)).To(Succeed())
		Expect(udt).To(Equal("vector"))

		By("re-running: idempotent")
		Expect(migrate(config, targetFile, "--yes").ExitCode()).To(Equal(0))
		Expect(tableCounts(ctx, target)).To(Equal(want))

		By("two concurrent runs: serialised by the advisory lock, no duplicates")
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				codes[i] = migrate(config, targetFile, "--yes").ExitCode()
			}()
		}
		wg.Wait()
		Expect(codes).To(Equal([]int{0, 0}))
		Expect(tableCounts(ctx, target)).To(Equal(want))

		By("leaving the source as it was")
		Expect(fileSum(dbPath)).To(Equal(before))

		By("refusing a second source into the same target")
		otherDir := GinkgoT().TempDir()
		otherConfig := filepath.Join(otherDir, "gateway.json")
		writeJSONFile(otherConfig, map[string]any{"tier": "local", "storage": map[string]any{"sqlite_path": filepath.Join(otherDir, "gw.db")}})
		seedLoad(otherConfig, homeSeed)
		other := migrate(otherConfig, targetFile, "--yes")
		Expect(other.ExitCode()).NotTo(Equal(0))
		Expect(string(other.Err.Contents())).To(ContainSubstring("not from this source"))
		Expect(tableCounts(ctx, target)).To(Equal(want))

		By("serving the migrated rows from a federated gateway, with the same API token")
		items := readBack(targetFile, token)
		Expect(items).NotTo(BeEmpty())
		Expect(idsOf(items)).To(ConsistOf(visibleIDs(ctx, target, "tasks", "ada@work.example")))
	}, SpecTimeout(Timeouts.Boot))

	It("[M1-9] migrates standalone -> federated, real[] embeddings becoming vector(256)", func(ctx SpecContext) {
		source := freshDatabase(ctx, "standalone")
		dir := GinkgoT().TempDir()
		config := filepath.Join(dir, "gateway.json")
		writeJSONFile(config, map[string]any{"tier": "standalone", "site": "office", "listen": map[string]any{"api": freeAddr()},
			"storage":          map[string]any{"postgres_url_file": secretFile(site("work"), source)},
			"sealing_key_file": filepath.Join(site("work").Dir, "secrets", "sealing.key")})
		token := seedLoad(config, workSeed).Users[0].Token
		sourceCounts := tableCounts(ctx, source)

		target := freshDatabase(ctx, "migrated")
		targetFile := secretFile(site("work"), target)
		run := migrate(config, targetFile, "--yes")
		Expect(run.ExitCode()).To(Equal(0), string(run.Err.Contents()))
		Expect(tableCounts(ctx, target)).To(Equal(sourceCounts))
		Expect(tableCounts(ctx, source)).To(Equal(sourceCounts), "the source is only read")

		conn := sqlConn(ctx, target)
		var dims int
		Expect(conn.QueryRow(ctx, `SELECT vector_dims(embedding) FROM memories LIMIT 1`).Scan(&dims)).To(Succeed())
		Expect(dims).To(Equal(256))

		items := readBack(targetFile, token)
		Expect(idsOf(items)).To(ConsistOf(visibleIDs(ctx, target, "tasks", "ada@work.example")))
	}, SpecTimeout(Timeouts.Boot))

	It("[M1-8] refuses a target without usable pgvector with the detector's message", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		config := filepath.Join(dir, "gateway.json")
		writeJSONFile(config, map[string]any{"tier": "local", "storage": map[string]any{"sqlite_path": filepath.Join(dir, "gw.db")}})
		seedLoad(config, workSeed)

		dsn := nonSuperuserDatabase(ctx)
		s := migrate(config, secretFile(site("work"), dsn), "--yes")
		Expect(s.ExitCode()).NotTo(Equal(0))
		Expect(string(s.Err.Contents())).To(ContainSubstring("may not CREATE EXTENSION"))
		noSecrets(string(s.Err.Contents()), dsn)
	}, SpecTimeout(Timeouts.CLI))
})
