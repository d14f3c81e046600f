package acceptance

import (
	"fmt"
	"net/http"
	"slices"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mosaic-federation/mosaic/gateway/api"
	"github.com/mosaic-federation/mosaic/harness/world"
)

// federatedResources are the resources every harness grant covers.
var federatedResources = []string{"tasks", "notes", "memories"}

// scopeIDs asks work's database for the rows a scope lets its subject see: personal
// rows (team_id null) when personal, and rows of the listed teams the subject is in.
func scopeIDs(s world.SiteInfo, table, subject string, personal bool, teams []string) []string {
	GinkgoHelper()
	if teams == nil {
		teams = []string{}
	}
	return queryIDs(bgCtx(), sqlConn(bgCtx(), s.PostgresURL), `SELECT t.id::text FROM `+table+` t, users u WHERE u.email = $1 AND (
		($2 AND t.owner_user_id = u.id AND t.team_id IS NULL) OR
		(t.team_id = ANY($3::uuid[]) AND t.team_id IN (SELECT team_id FROM team_members WHERE user_id = u.id)))`,
		subject, personal, teams)
}

// harnessGrant is the world's grant whose owner at home is the given user.
func harnessGrant(owner string) world.Grant {
	GinkgoHelper()
	i := slices.IndexFunc(the.World.Grants, func(g world.Grant) bool { return g.Serving == "work" && g.Owner == owner })
	Expect(i).To(BeNumerically(">=", 0), "the harness enrolled no peer at work for %s", owner)
	return the.World.Grants[i]
}

// grantRows are, per resource, the ids a harness grant's scope allows.
func grantRows(g world.Grant) map[string][]string {
	GinkgoHelper()
	work := site("work")
	var teams []string
	if !g.Personal {
		teams = workTeams()
	}
	rows := map[string][]string{}
	for _, r := range federatedResources {
		rows[r] = scopeIDs(work, r, g.Subject, true, teams)
	}
	return rows
}

// unknownPeer checks a request naming a peer the caller does not own is refused as an
// unknown peer, with no rows.
func unknownPeer(url, token string) {
	GinkgoHelper()
	var e api.ErrorBody
	Expect(call(http.MethodGet, url, &e, bearer(token))).To(Equal(http.StatusNotFound), url)
	Expect(e.Error.Code).To(Equal(api.CodeUnknownPeer), url)
}

var _ = Describe("Many users on each site", Label("M7", "security"), func() {
	var home, work world.SiteInfo
	var ada, william world.User // home's users[0] and users[1]
	BeforeEach(func() {
		home, work = site("home"), site("work")
		Expect(len(home.Users)).To(BeNumerically(">=", 2))
		Expect(len(work.Users)).To(BeNumerically(">=", 2))
		ada, william = home.Users[0], home.Users[1]
	})

	It("[M7-1] gives two users of each site their own peer and grant; neither resolves the other's peer by name", func() {
		mine, theirs := harnessGrant(ada.Email), harnessGrant(william.Email)
		Expect(mine.OwnerPeer).To(Equal("work"))
		Expect(theirs.OwnerPeer).To(Equal("work-2"))
		Expect(mine.GrantID).NotTo(Equal(theirs.GrantID))
		Expect([]string{mine.Subject, theirs.Subject}).To(Equal([]string{work.Users[0].Email, work.Users[1].Email}))
		Expect(theirs.Personal).To(BeTrue())

		By("keeping each peer at home under its own owner")
		conn := sqlConn(bgCtx(), home.PostgresURL)
		for _, g := range []world.Grant{mine, theirs} {
			var owner string
			Expect(conn.QueryRow(bgCtx(), `SELECT u.email FROM federation_peers p JOIN users u ON u.id = p.owner_user_id
				WHERE p.direction = 'outbound' AND p.name = $1`, g.OwnerPeer).Scan(&owner)).To(Succeed())
			Expect(owner).To(Equal(g.Owner))
		}

		By("reading each user's own peer: exactly their grant's rows")
		for _, g := range []world.Grant{mine, theirs} {
			token := home.Users[slices.IndexFunc(home.Users, func(u world.User) bool { return u.Email == g.Owner })].Token
			want := grantRows(g)
			for _, r := range federatedResources {
				got := localList(home, token, r, "federated:"+g.OwnerPeer)
				Expect(idsOf(got)).To(ConsistOf(want[r]), "%s's %s through %s", g.Owner, r, g.OwnerPeer)
			}
		}
		Expect(grantRows(theirs)["tasks"]).NotTo(BeEmpty(), "work's users[1] has personal rows to federate")
		Expect(grantRows(theirs)["tasks"]).NotTo(ContainElements(grantRows(mine)["tasks"]))

		By("naming the other user's peer: unknown, for lists, gets and searches")
		for _, c := range []struct {
			token string
			peer  world.Grant // the other user's
		}{{ada.Token, theirs}, {william.Token, mine}} {
			other := grantRows(c.peer)
			src := "source=federated:" + c.peer.OwnerPeer
			for _, r := range federatedResources {
				unknownPeer(home.APIURL+"/api/v1/"+r+"?"+src, c.token)
				unknownPeer(home.APIURL+"/api/v1/"+r+"/"+other[r][0]+"?"+src, c.token)
			}
			unknownPeer(home.APIURL+"/api/v1/search?resource=notes&q=the&"+src, c.token)
		}

		By("fanning out only to the caller's own peers")
		for _, c := range []struct {
			token, notMine string
		}{{ada.Token, "federated:" + theirs.OwnerPeer}, {william.Token, "federated:" + mine.OwnerPeer}} {
			var all api.ListOf[map[string]any]
			Expect(call(http.MethodGet, home.APIURL+"/api/v1/tasks?source=all&limit=200", &all, bearer(c.token))).To(Equal(http.StatusOK))
			Expect(all.Sources).NotTo(ContainElement(HaveField("Name", c.notMine)))
			for _, it := range all.Items {
				Expect(it["_source"]).NotTo(Equal(c.notMine))
			}
		}
	})

	It("[M7-2] one subject under two grants with different scopes sees exactly each scope", func() {
		subject := harnessGrant(william.Email) // work's users[1] under personal rows only
		By("granting the same subject a second scope: team rows of her teams, tasks and notes only")
		graceTeams := queryIDs(bgCtx(), sqlConn(bgCtx(), work.PostgresURL), `SELECT m.team_id::text FROM team_members m
			JOIN users u ON u.id = m.user_id WHERE u.email = $1 ORDER BY 1`, subject.Subject)
		Expect(graceTeams).NotTo(BeEmpty())
		name := uniqueName("teams")
		cliJSON(work, &api.Peer{}, "federation", "peer", "create", "--name", name)
		var g api.GrantCreated
		cliJSON(work, &g, "federation", "grant", "create", "--peer", name, "--subject-user", subject.Subject,
			"--scope", scopeFile(scopeJSON([]string{"tasks", "notes"}, nil, graceTeams, false, 100)))
		atHome := uniqueName("work-teams")
		add := cliStdin(home, g.EnrollmentURL, "federation", "peer", "add", "-", "--name", atHome, "--local-user", william.Email, "--json")
		Expect(add.ExitCode()).To(Equal(0), string(add.Err.Contents()))
		// william's peers stay the harness's one for the specs after this
		DeferCleanup(func() {
			cliJSON(home, &api.Peer{}, "federation", "peer", "remove", atHome, "--local-user", william.Email)
		})

		personal := grantRows(subject)
		for _, r := range []string{"tasks", "notes"} {
			teamRows := scopeIDs(work, r, subject.Subject, false, graceTeams)
			Expect(teamRows).NotTo(BeEmpty())
			Expect(idsOf(localList(home, william.Token, r, "federated:"+atHome))).To(ConsistOf(teamRows), "%s under the team grant", r)
			Expect(idsOf(localList(home, william.Token, r, "federated:"+subject.OwnerPeer))).To(ConsistOf(personal[r]), "%s under the personal grant", r)

			By("getting a row of one scope through the other grant: 404")
			Expect(call(http.MethodGet, home.APIURL+"/api/v1/"+r+"/"+personal[r][0]+"?source=federated:"+atHome, nil, bearer(william.Token))).
				To(Equal(http.StatusNotFound))
			Expect(call(http.MethodGet, home.APIURL+"/api/v1/"+r+"/"+teamRows[0]+"?source=federated:"+subject.OwnerPeer, nil, bearer(william.Token))).
				To(Equal(http.StatusNotFound))
		}
		By("a resource outside the second scope stays outside it: the peer refuses, home answers partial with no rows")
		var l api.ListOf[map[string]any]
		Expect(call(http.MethodGet, home.APIURL+"/api/v1/memories?source=federated:"+atHome, &l, bearer(william.Token))).
			To(Equal(http.StatusOK))
		Expect(l.Items).To(BeEmpty())
		Expect(l.Partial).To(BeTrue())
		Expect(l.Sources).To(ConsistOf(And(HaveField("Name", "federated:"+atHome), HaveField("Status", "error"))))
	})

	It("[M7-3] two users × 200 interleaved lists, gets and searches: every row returned belongs to the caller's own grant", func(ctx SpecContext) {
		type caller struct {
			user    world.User
			grant   world.Grant
			allowed map[string]map[string]bool // resource → id → in scope
			ids     map[string][]string
		}
		var callers []*caller
		for _, u := range []world.User{ada, william} {
			g := harnessGrant(u.Email)
			c := &caller{user: u, grant: g, allowed: map[string]map[string]bool{}, ids: grantRows(g)}
			for r, ids := range c.ids {
				c.allowed[r] = map[string]bool{}
				for _, id := range ids {
					c.allowed[r][id] = true
				}
				Expect(ids).NotTo(BeEmpty(), "%s has %s to read", u.Email, r)
			}
			callers = append(callers, c)
		}
		// Ids of the other caller's grant that this caller's grant does not allow.
		foreign := func(c, o *caller, r string) []string {
			var out []string
			for _, id := range o.ids[r] {
				if !c.allowed[r][id] {
					out = append(out, id)
				}
			}
			return out
		}

		const perUser, workers = 200, 4
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		counts := map[string]int{}
		for ci, c := range callers {
			o := callers[1-ci]
			for w := range workers {
				wg.Add(1)
				go func() {
					defer GinkgoRecover()
					defer wg.Done()
					for i := w; i < perUser && ctx.Err() == nil; i += workers {
						r := federatedResources[i%len(federatedResources)]
						src := "source=federated:" + c.grant.OwnerPeer
						var problem string
						switch i % 4 {
						case 0: // a list
							var l api.ListOf[map[string]any]
							st := call(http.MethodGet, fmt.Sprintf("%s/api/v1/%s?%s&limit=100", home.APIURL, r, src), &l, bearer(c.user.Token))
							problem = checkRows(st, l.Items, c.allowed[r], c.grant.OwnerPeer)
						case 1: // a get of one of the caller's own rows
							id := c.ids[r][i%len(c.ids[r])]
							var got api.ItemResponse
							if st := call(http.MethodGet, home.APIURL+"/api/v1/"+r+"/"+id+"?"+src, &got, bearer(c.user.Token)); st != http.StatusOK {
								problem = fmt.Sprintf("get own %s: %d", r, st)
							} else if item, _ := got.Item.(map[string]any); item["id"] != id {
								problem = fmt.Sprintf("get own %s %s answered %v", r, id, item["id"])
							}
						case 2: // a get of the other caller's row: never found
							if ids := foreign(c, o, r); len(ids) > 0 {
								id := ids[i%len(ids)]
								if st := call(http.MethodGet, home.APIURL+"/api/v1/"+r+"/"+id+"?"+src, nil, bearer(c.user.Token)); st != http.StatusNotFound {
									problem = fmt.Sprintf("get of another grant's %s %s: %d", r, id, st)
								}
							}
						case 3: // a search
							var l api.ListOf[map[string]any]
							st := call(http.MethodGet, home.APIURL+"/api/v1/search?resource="+r+"&q=the&"+src, &l, bearer(c.user.Token))
							problem = checkRows(st, l.Items, c.allowed[r], c.grant.OwnerPeer)
						}
						mu.Lock()
						counts[c.user.Email]++
						if problem != "" {
							failures = append(failures, c.user.Email+": "+problem)
						}
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		Expect(failures).To(BeEmpty())
		Expect(counts).To(Equal(map[string]int{ada.Email: perUser, william.Email: perUser}))
	}, SpecTimeout(Timeouts.CLI))
})

// checkRows says what is wrong with an answer of rows for a caller, or "".
func checkRows(status int, items []map[string]any, allowed map[string]bool, peer string) string {
	if status != http.StatusOK {
		return fmt.Sprintf("status %d", status)
	}
	for _, it := range items {
		id, _ := it["id"].(string)
		if !allowed[id] {
			return fmt.Sprintf("row %s is outside the caller's grant", id)
		}
		if it["_source"] != "federated:"+peer {
			return fmt.Sprintf("row %s tagged %v", id, it["_source"])
		}
	}
	return ""
}
