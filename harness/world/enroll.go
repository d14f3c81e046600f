package world

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Grant is what the harness set up between two sites.
type Grant struct {
	GrantID string `json:"grant_id"`
	Serving string `json:"serving"` // the site that granted (work)
	Peer    string `json:"peer"`    // the requesting site's name there (home)
	Subject string `json:"subject"` // serving site user's email
	Owner   string `json:"owner"`   // requesting site user's email
}

// enroll runs the real enrollment of the requesting site at every other site, through
// the CLI: the serving site registers the peer and grants its demo user; the
// requesting site's demo user `peer add`s the enrollment URL (on stdin).
func (w *World) enroll(ctx context.Context) error {
	home := w.Sites[w.Order[0]]
	for _, name := range w.Order[1:] {
		work := w.Sites[name]
		if len(work.Users) == 0 || len(home.Users) == 0 {
			w.progress("%-5s not enrolled: a site has no seeded users", name)
			continue
		}
		g, err := enrollAt(ctx, home, work)
		if err != nil {
			return fmt.Errorf("enroll %s at %s: %w", home.Name, work.Name, err)
		}
		w.mu.Lock()
		w.Grants = append(w.Grants, g)
		w.mu.Unlock()
		w.progress("%-5s enrolled %s: grant %s for %s", work.Name, home.Name, g.GrantID, g.Subject)
	}
	return nil
}

func enrollAt(ctx context.Context, home, work *Site) (Grant, error) {
	subject, owner := work.Users[0].Email, home.Users[0].Email
	teams, err := teamsOf(ctx, work.Postgres.URL, subject)
	if err != nil {
		return Grant{}, err
	}
	scope := map[string]any{"resources": []string{"tasks", "notes", "memories"}, "excluded_resources": []string{},
		"include_teams": teams, "include_personal": true, "max_rows_per_query": 100}
	scopeFile := work.Path("scope-" + home.Name + ".json")
	if err := writeJSON(scopeFile, scope); err != nil {
		return Grant{}, err
	}
	if _, err := work.GatewayCLI(ctx, "federation", "peer", "create", "--name", home.Name, "--json"); err != nil {
		return Grant{}, err
	}
	out, err := work.GatewayCLI(ctx, "federation", "grant", "create", "--peer", home.Name, "--subject-user", subject,
		"--scope", scopeFile, "--json")
	if err != nil {
		return Grant{}, err
	}
	var created struct {
		GrantID       string `json:"grant_id"`
		EnrollmentURL string `json:"enrollment_url"`
	}
	if err := json.Unmarshal(out, &created); err != nil {
		return Grant{}, fmt.Errorf("grant create output: %w", err)
	}
	if _, err := home.gatewayCLI(ctx, strings.NewReader(created.EnrollmentURL), "federation", "peer", "add", "-",
		"--name", work.Name, "--local-user", owner, "--json"); err != nil {
		return Grant{}, err
	}
	return Grant{GrantID: created.GrantID, Serving: work.Name, Peer: home.Name, Subject: subject, Owner: owner}, nil
}

// teamsOf lists the teams a user of a site belongs to.
func teamsOf(ctx context.Context, dsn, email string) ([]string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT m.team_id::text FROM team_members m JOIN users u ON u.id = m.user_id
		WHERE u.email = $1 ORDER BY 1`, email)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
