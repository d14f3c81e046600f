package fedclient

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// page100 is a list answer of 100 tasks as a peer's gateway writes it: half of them
// in a team, a third with a due date, titles of a few words.
func page100() []byte {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		team, due := "null", "null"
		if i%2 == 0 {
			team = `"0191d3a8-0000-7000-8000-0000000000bb"`
		}
		if i%3 == 0 {
			due = `"2026-03-04T05:06:07.123456Z"`
		}
		fmt.Fprintf(&b, `{"id":"0191d3a8-0000-7000-8000-%012d","owner_user_id":"%s","team_id":%s,"title":"Write the quarterly report, part %d","status":"in_progress","due_at":%s,"created_at":"2026-01-02T03:%02d:05.654321Z","updated_at":"2026-01-02T04:04:05Z","_source":"local"}`,
			1000-i, ownerID, team, i, due, 59-i%60)
	}
	b.WriteString(`],"next_cursor":"eyJ2IjoxLCJrIjoiMjAyNi0wMS0wMlQwMzowNDowNVoifQ","truncated":false}`)
	return []byte(b.String())
}

// BenchmarkDecodePage100 is the requesting side's cost of one peer page: decoding
// and checking 100 task rows and setting their _source.
func BenchmarkDecodePage100(b *testing.B) {
	body := page100()
	req := api.FedListRequest{Limit: 100}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if res, ok := decodeList(api.ResourceTasks, body, req, "federated:work"); !ok || len(res.Items) != 100 {
			b.Fatal("the page did not decode")
		}
	}
}

// BenchmarkClientList100 is one peer call of a 100-row page over a kept-alive
// HTTP/2 TLS connection to a peer answering a fixed body: the requesting side's
// transport, reading and decoding together.
func BenchmarkClientList100(b *testing.B) {
	body := page100()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := NewClient("work", srv.URL, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res, err := c.List(ctx, api.ResourceTasks, api.FedListRequest{Limit: 100}); err != nil || len(res.Items) != 100 {
			b.Fatal(err)
		}
	}
}
