package world

import (
	"reflect"
	"testing"
)

func TestPairsOfEnrollsASecondUserUnderAPersonalScope(t *testing.T) {
	users := func(emails ...string) []User {
		var us []User
		for _, e := range emails {
			us = append(us, User{Email: e})
		}
		return us
	}
	home := &Site{Name: "home", Users: users("ada@home", "william@home")}
	cases := []struct {
		name string
		work *Site
		want []pair
	}{
		{"two users each", &Site{Name: "work", Users: users("ada@work", "grace@work")}, []pair{
			{subject: "ada@work", owner: "ada@home", peer: "home", ownerPeer: "work"},
			{subject: "grace@work", owner: "william@home", peer: "home-2", ownerPeer: "work-2", personalOnly: true},
		}},
		{"one user at the serving site", &Site{Name: "lab", Users: users("ada@lab")}, []pair{
			{subject: "ada@lab", owner: "ada@home", peer: "home", ownerPeer: "lab"},
		}},
	}
	for _, c := range cases {
		if got := pairsOf(home, c.work); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: pairs = %+v, want %+v", c.name, got, c.want)
		}
	}
}
