package fedclient

import (
	"strings"
	"testing"

	"github.com/mosaic-federation/mosaic/gateway/api"
)

// An answer padded with whitespace and unknown members weighs what its rows keep, not
// its length: a hostile peer cannot fill the shared answer cache with padding and
// push out other users' entries.
func TestAPaddedAnswerWeighsItsRows(t *testing.T) {
	row := `{"id": "` + taskID + `", "owner_user_id": "` + ownerID + `", "title": "t", "status": "open", "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z"}`
	plain := []byte(`{"items": [` + row + `]}`)
	padded := []byte(`{"padding": "` + strings.Repeat("x", 1<<20) + `",` + strings.Repeat(" ", 1<<20) + `"items": [` + row + `]}`)
	req := api.FedListRequest{Limit: 10}
	a, ok := decodeList(api.ResourceTasks, plain, req, "federated:work")
	b, ok2 := decodeList(api.ResourceTasks, padded, req, "federated:work")
	if !ok || !ok2 {
		t.Fatalf("decoded: %v %v", ok, ok2)
	}
	if a.Size != b.Size || b.Size > 1024 {
		t.Errorf("padded answer weighs %d, plain %d: want the same, a row's worth", b.Size, a.Size)
	}
}
