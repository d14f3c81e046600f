package acceptance

import (
	"context"
	"net/url"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/harness/world"
)

func bgCtx() context.Context { return context.Background() }

// sqlConn connects to a database (closed when the spec ends).
func sqlConn(ctx context.Context, dsn string) *pgx.Conn {
	GinkgoHelper()
	conn, err := pgx.Connect(ctx, dsn)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { conn.Close(context.Background()) })
	return conn
}

// queryIDs runs a query whose one column is an id and returns the ids.
func queryIDs(ctx context.Context, conn *pgx.Conn, query string, args ...any) []string {
	GinkgoHelper()
	rows, err := conn.Query(ctx, query, args...)
	Expect(err).NotTo(HaveOccurred())
	var ids []string
	for rows.Next() {
		var id string
		Expect(rows.Scan(&id)).To(Succeed())
		ids = append(ids, id)
	}
	Expect(rows.Err()).NotTo(HaveOccurred())
	return ids
}

// dbSuffix makes a database or role name unique.
func dbSuffix() string { return strings.ReplaceAll(uuid.NewString(), "-", "")[:12] }

// databaseURL is the work cluster's URL for another database, as another role when
// user is not nil.
func databaseURL(db string, user *url.Userinfo) string {
	GinkgoHelper()
	u, err := url.Parse(site("work").PostgresURL)
	Expect(err).NotTo(HaveOccurred())
	if user != nil {
		u.User = user
	}
	u.Path = "/" + db
	return u.String()
}

// freshDatabase creates an empty database on the work cluster (dropped when the spec
// ends) and returns its URL.
func freshDatabase(ctx context.Context, prefix string) string {
	GinkgoHelper()
	admin := sqlConn(ctx, site("work").PostgresURL)
	db := prefix + "_" + dbSuffix()
	_, err := admin.Exec(ctx, "CREATE DATABASE "+db)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx context.Context) { _, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
	return databaseURL(db, nil)
}

// nonSuperuserDatabase makes, on the work cluster, a real non-superuser role owning an
// empty database of its own (pgvector is installed on the server but this role may not
// create it), and returns that role's URL for the database.
func nonSuperuserDatabase(ctx context.Context) string {
	GinkgoHelper()
	admin := sqlConn(ctx, site("work").PostgresURL)
	suffix := dbSuffix()
	role, db, password := "app_"+suffix, "appdb_"+suffix, "pw-"+uuid.NewString()
	_, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN NOSUPERUSER PASSWORD '"+password+"'")
	Expect(err).NotTo(HaveOccurred())
	_, err = admin.Exec(ctx, "CREATE DATABASE "+db+" OWNER "+role)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx context.Context) {
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		_, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+role)
	})
	return databaseURL(db, url.UserPassword(role, password))
}

// userID is a user's id at a site.
func userID(s world.SiteInfo, email string) string {
	GinkgoHelper()
	var id string
	conn := sqlConn(bgCtx(), s.PostgresURL)
	Expect(conn.QueryRow(bgCtx(), `SELECT id::text FROM users WHERE email = $1`, email).Scan(&id)).To(Succeed())
	return id
}

// visibleIDs asks the database which rows native RBAC lets a user see.
func visibleIDs(ctx context.Context, dsn, table, email string) []string {
	GinkgoHelper()
	return queryIDs(ctx, sqlConn(ctx, dsn), `SELECT t.id::text FROM `+table+` t, users u WHERE u.email = $1 AND
		(t.owner_user_id = u.id OR t.team_id IN (SELECT team_id FROM team_members WHERE user_id = u.id))`, email)
}

// effectiveIDs asks the database for a scope's effective rows of the demo user.
func effectiveIDs(s world.SiteInfo, table string, personal bool, teams []string) []string {
	GinkgoHelper()
	return queryIDs(bgCtx(), sqlConn(bgCtx(), s.PostgresURL), `SELECT t.id::text FROM `+table+` t, users u WHERE u.email = $1 AND (
		($2 AND t.owner_user_id = u.id AND t.team_id IS NULL) OR
		(t.team_id = ANY($3::uuid[]) AND t.team_id IN (SELECT team_id FROM team_members WHERE user_id = u.id)))`,
		s.Users[0].Email, personal, teams)
}

// teamIDs returns the demo user's teams and one team they are not in.
func teamIDs(s world.SiteInfo) (mine []string, other string) {
	GinkgoHelper()
	conn := sqlConn(bgCtx(), s.PostgresURL)
	mine = queryIDs(bgCtx(), conn, `SELECT m.team_id::text FROM team_members m JOIN users u ON u.id = m.user_id WHERE u.email = $1 ORDER BY 1`, s.Users[0].Email)
	Expect(conn.QueryRow(bgCtx(), `SELECT id::text FROM teams WHERE id <> ALL($1::uuid[]) LIMIT 1`, mine).Scan(&other)).To(Succeed())
	return mine, other
}
