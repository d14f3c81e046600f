package world

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Grant is what the harness set up between two sites: one user of each, paired.
type Grant struct {
	GrantID string `json:"grant_id"`
	Serving string `json:"serving"` // the site that granted (work)
	Peer    string `json:"peer"`    // the requesting site's peer name there (home, home-2)
	Subject string `json:"subject"` // serving site user's email
	Owner   string `json:"owner"`   // requesting site user's email
	// OwnerPeer is the serving site's peer name at the requesting site, owned by
	// Owner: what Owner writes in source=federated:<name> (work, work-2).
	OwnerPeer string `json:"owner_peer"`
	// Personal is true for a personal-only scope (no team rows).
	Personal bool `json:"personal_only"`
}

// enroll runs the real enrollment of the requesting site at every other site, through
// the CLI: the serving site registers the peer and grants its user; the requesting
// site's user `peer add`s the enrollment URL (on stdin). Two pairs per site (SPEC §6a,
// multi-user): users[0] with users[0] under the subject's personal rows and teams, as
// peers named after the sites; users[1] with users[1] under personal rows only, as
// peers named <site>-2.
func (w *World) enroll(ctx context.Context) error {
	home := w.Sites[w.Order[0]]
	for _, name := range w.Order[1:] {
		work := w.Sites[name]
		if len(work.Users) == 0 || len(home.Users) == 0 {
			w.progress("%-5s not enrolled: a site has no seeded users", name)
			continue
		}
		for _, p := range pairsOf(home, work) {
			g, err := enrollAt(ctx, home, work, p)
			if err != nil {
				return fmt.Errorf("enroll %s at %s for %s: %w", home.Name, work.Name, p.owner, err)
			}
			w.mu.Lock()
			w.Grants = append(w.Grants, g)
			w.mu.Unlock()
			w.progress("%-5s enrolled %s as %s: grant %s for %s", work.Name, home.Name, g.Peer, g.GrantID, g.Subject)
		}
	}
	return nil
}

// pair is one enrollment: a user of each site and the names of both peers.
type pair struct {
	subject, owner  string // work's user, home's user
	peer, ownerPeer string // home's name at work, work's name at home
	personalOnly    bool
}

// pairsOf are the enrollments between two sites: users[0]'s, and users[1]'s when both
// sites have a second user.
func pairsOf(home, work *Site) []pair {
	ps := []pair{{subject: work.Users[0].Email, owner: home.Users[0].Email, peer: home.Name, ownerPeer: work.Name}}
	if len(work.Users) > 1 && len(home.Users) > 1 {
		ps = append(ps, pair{subject: work.Users[1].Email, owner: home.Users[1].Email,
			peer: home.Name + "-2", ownerPeer: work.Name + "-2", personalOnly: true})
	}
	return ps
}

func enrollAt(ctx context.Context, home, work *Site, p pair) (Grant, error) {
	teams := []string{}
	if !p.personalOnly {
		var err error
		if teams, err = teamsOf(ctx, work.Postgres.URL, p.subject); err != nil {
			return Grant{}, err
		}
	}
	scope := map[string]any{"resources": []string{"tasks", "notes", "memories"}, "excluded_resources": []string{},
		"include_teams": teams, "include_personal": true, "max_rows_per_query": 100}
	scopeFile := work.Path("scope-" + p.peer + ".json")
	if err := writeJSON(scopeFile, scope); err != nil {
		return Grant{}, err
	}
	if _, err := work.GatewayCLI(ctx, "federation", "peer", "create", "--name", p.peer, "--json"); err != nil {
		return Grant{}, err
	}
	out, err := work.GatewayCLI(ctx, "federation", "grant", "create", "--peer", p.peer, "--subject-user", p.subject,
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
		"--name", p.ownerPeer, "--local-user", p.owner, "--json"); err != nil {
		return Grant{}, err
	}
	return Grant{GrantID: created.GrantID, Serving: work.Name, Peer: p.peer, Subject: p.subject, Owner: p.owner,
		OwnerPeer: p.ownerPeer, Personal: p.personalOnly}, nil
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
