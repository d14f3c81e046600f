package fedstore

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestInboundPeerTransitions(t *testing.T) {
	ctx := context.Background()
	s, user := fedStore(t)
	g := activeGrant(t, s, user, "500", time.Now().Add(time.Hour))
	name := "peer-500"
	steps := []struct {
		to, want string
		refused  bool
	}{
		{"active", "", true}, // resume an active peer
		{"suspended", "suspended", false},
		{"suspended", "", true},
		{"active", "active", false},
		{"revoked", "revoked", false},
		{"active", "", true}, // revoked is final
		{"suspended", "", true},
		{"revoked", "", true},
	}
	for i, st := range steps {
		p, grants, err := s.SetInboundPeerState(ctx, name, st.to)
		switch {
		case st.refused && !errors.Is(err, ErrTransition):
			t.Errorf("step %d (→ %s): %v, want ErrTransition", i, st.to, err)
		case !st.refused && (err != nil || p.State != st.want):
			t.Errorf("step %d (→ %s): %+v %v", i, st.to, p, err)
		case st.to == "revoked" && !st.refused && (len(grants) != 1 || grants[0] != g.ID):
			t.Errorf("revoking the peer revoked grants %v, want [%s]", grants, g.ID)
		}
	}
	got, err := s.Grant(ctx, g.ID)
	if err != nil || got.Status != "revoked" {
		t.Errorf("the revoked peer's grant: %+v %v", got, err)
	}
	serials, err := s.Serials(ctx, g.ID)
	if err != nil || len(serials) != 1 || serials[0].State != "revoked" {
		t.Errorf("the revoked peer's certificates are not marked for revocation at the CA: %+v %v", serials, err)
	}
	if _, _, err := s.SetInboundPeerState(ctx, "no-such-peer", "suspended"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown peer: %v", err)
	}
}
