package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func habilitationBehaviours() []behaviour {
	return []behaviour{
		{"GrantGetRevoke", testHabilitationGrantGetRevoke},
		{"GrantReplaces", testHabilitationReplace},
		{"EndsAtUntil", testHabilitationUntil},
		{"UnknownAgentOrClient", testHabilitationUnknownParties},
		{"ListOrderedAndFiltered", testHabilitationList},
		{"UserAccessOneRead", testUserAccess},
		{"UserAccessEndsAtUntil", testUserAccessUntil},
		{"GrantManyInOrder", testGrantHabilitations},
		{"GrantManyAllOrNothing", testGrantHabilitationsAllOrNothing},
	}
}

func newHabilitation(userID, clientID string, now time.Time) storage.Habilitation {
	// Whole milliseconds: the end is compared at the contract's precision.
	until := now.Add(30 * 24 * time.Hour)
	return storage.Habilitation{
		UserID:    userID,
		ClientID:  clientID,
		Roles:     []string{"gestionnaire", "consultation"},
		Until:     &until,
		GrantedAt: now.Add(123 * time.Microsecond),
		GrantedBy: "admin@caf.example.fr",
	}
}

// addHabilitation grants a habilitation to an agent and a client that must
// exist already.
func addHabilitation(t *testing.T, s storage.Store, userID, clientID string, now time.Time) storage.Habilitation {
	t.Helper()
	h := newHabilitation(userID, clientID, now)
	mustOK(t, s.GrantHabilitation(t.Context(), h), fmt.Sprintf("GrantHabilitation %s/%s", userID, clientID))
	return h
}

// habilitationWorld stores agents u-1, u-2 and clients paie, portail.
func habilitationWorld(t *testing.T, s storage.Store, now time.Time) {
	t.Helper()
	addUser(t, s, "u-1", "agent@example.fr", now)
	addUser(t, s, "u-2", "collegue@example.fr", now)
	addClient(t, s, "paie", now)
	addClient(t, s, "portail", now)
}

func testHabilitationGrantGetRevoke(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	habilitationWorld(t, s, now)

	_, err := s.GetHabilitation(ctx, "u-1", "paie", now)
	wantErr(t, err, storage.ErrNotFound, "GetHabilitation before any grant")

	h := addHabilitation(t, s, "u-1", "paie", now)
	open := storage.Habilitation{UserID: "u-2", ClientID: "paie", GrantedAt: now, GrantedBy: "admin"}
	mustOK(t, s.GrantHabilitation(ctx, open), "GrantHabilitation without end nor roles")
	other := addHabilitation(t, s, "u-1", "portail", now)

	got, err := s.GetHabilitation(ctx, "u-1", "paie", now)
	mustOK(t, err, "GetHabilitation")
	assertSame(t, "habilitation", got, h)
	got, err = s.GetHabilitation(ctx, "u-2", "paie", now.Add(10*365*24*time.Hour))
	mustOK(t, err, "GetHabilitation without end, years later")
	assertSame(t, "habilitation without end", got, open)
	_, err = s.GetHabilitation(ctx, "u-2", "portail", now)
	wantErr(t, err, storage.ErrNotFound, "GetHabilitation of a pair never granted")

	mustOK(t, s.RevokeHabilitation(ctx, "u-1", "paie"), "RevokeHabilitation")
	_, err = s.GetHabilitation(ctx, "u-1", "paie", now)
	wantErr(t, err, storage.ErrNotFound, "GetHabilitation after revoke")
	wantErr(t, s.RevokeHabilitation(ctx, "u-1", "paie"), storage.ErrNotFound, "RevokeHabilitation again")
	wantErr(t, s.RevokeHabilitation(ctx, "u-9", "paie"), storage.ErrNotFound, "RevokeHabilitation never granted")

	// The agent's other habilitation and the other agent's stay.
	got, err = s.GetHabilitation(ctx, "u-1", "portail", now)
	mustOK(t, err, "GetHabilitation of another client")
	assertSame(t, "habilitation on another client", got, other)
	_, err = s.GetHabilitation(ctx, "u-2", "paie", now)
	mustOK(t, err, "GetHabilitation of another agent")
}

func testHabilitationReplace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	habilitationWorld(t, s, now)
	addHabilitation(t, s, "u-1", "paie", now)

	later := now.Add(time.Hour)
	replaced := storage.Habilitation{UserID: "u-1", ClientID: "paie", Roles: []string{"lecture"},
		GrantedAt: later, GrantedBy: "autre-admin"}
	mustOK(t, s.GrantHabilitation(ctx, replaced), "GrantHabilitation again")
	got, err := s.GetHabilitation(ctx, "u-1", "paie", later.Add(365*24*time.Hour))
	mustOK(t, err, "GetHabilitation after replace (no end any more)")
	assertSame(t, "replaced habilitation", got, replaced)
	list, err := s.ListHabilitations(ctx, storage.HabilitationFilter{})
	mustOK(t, err, "ListHabilitations")
	assertHabilitations(t, "habilitations after replace", list, []storage.Habilitation{replaced})
}

func testHabilitationUntil(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	habilitationWorld(t, s, now)
	h := addHabilitation(t, s, "u-1", "paie", now)

	_, err := s.GetHabilitation(ctx, "u-1", "paie", h.Until.Add(-time.Millisecond))
	mustOK(t, err, "GetHabilitation just before Until")
	_, err = s.GetHabilitation(ctx, "u-1", "paie", *h.Until)
	wantErr(t, err, storage.ErrNotFound, "GetHabilitation at Until")
	_, err = s.GetHabilitation(ctx, "u-1", "paie", h.Until.Add(time.Second))
	wantErr(t, err, storage.ErrNotFound, "GetHabilitation after Until")

	// An ended habilitation is still listed, and can be revoked.
	list, err := s.ListHabilitations(ctx, storage.HabilitationFilter{UserID: "u-1"})
	mustOK(t, err, "ListHabilitations")
	assertHabilitations(t, "ended habilitation listed", list, []storage.Habilitation{h})
	mustOK(t, s.RevokeHabilitation(ctx, "u-1", "paie"), "RevokeHabilitation of an ended one")
}

// Granting to an agent or a client that does not exist fails and stores
// nothing: a habilitation never outlives its client.
func testHabilitationUnknownParties(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	habilitationWorld(t, s, now)

	wantErr(t, s.GrantHabilitation(ctx, newHabilitation("u-9", "paie", now)), storage.ErrNotFound, "GrantHabilitation unknown agent")
	wantErr(t, s.GrantHabilitation(ctx, newHabilitation("u-1", "inconnu", now)), storage.ErrNotFound, "GrantHabilitation unknown client")
	mustOK(t, s.DeleteClient(ctx, "portail"), "DeleteClient")
	wantErr(t, s.GrantHabilitation(ctx, newHabilitation("u-1", "portail", now)), storage.ErrNotFound, "GrantHabilitation deleted client")

	list, err := s.ListHabilitations(ctx, storage.HabilitationFilter{})
	mustOK(t, err, "ListHabilitations")
	assertHabilitations(t, "habilitations after refused grants", list, nil)
}

func testHabilitationList(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	list, err := s.ListHabilitations(ctx, storage.HabilitationFilter{})
	mustOK(t, err, "ListHabilitations on an empty store")
	assertHabilitations(t, "ListHabilitations on an empty store", list, nil)

	habilitationWorld(t, s, now)
	addClient(t, s, "annuaire", now)
	// Granted out of order, one of them already ended.
	u2portail := addHabilitation(t, s, "u-2", "portail", now)
	u1portail := addHabilitation(t, s, "u-1", "portail", now)
	u2paie := addHabilitation(t, s, "u-2", "paie", now)
	ended := now.Add(-time.Hour)
	u1annuaire := newHabilitation("u-1", "annuaire", now.Add(-48*time.Hour))
	u1annuaire.Until = &ended
	mustOK(t, s.GrantHabilitation(ctx, u1annuaire), "GrantHabilitation ended")
	u1paie := addHabilitation(t, s, "u-1", "paie", now)

	for _, c := range []struct {
		filter storage.HabilitationFilter
		want   []storage.Habilitation
	}{
		{storage.HabilitationFilter{}, []storage.Habilitation{u1annuaire, u1paie, u1portail, u2paie, u2portail}},
		{storage.HabilitationFilter{UserID: "u-1"}, []storage.Habilitation{u1annuaire, u1paie, u1portail}},
		{storage.HabilitationFilter{ClientID: "paie"}, []storage.Habilitation{u1paie, u2paie}},
		{storage.HabilitationFilter{ClientID: "portail"}, []storage.Habilitation{u1portail, u2portail}},
		{storage.HabilitationFilter{UserID: "u-2", ClientID: "paie"}, []storage.Habilitation{u2paie}},
		{storage.HabilitationFilter{UserID: "u-2", ClientID: "annuaire"}, nil},
		{storage.HabilitationFilter{UserID: "u-9"}, nil},
	} {
		got, err := s.ListHabilitations(ctx, c.filter)
		mustOK(t, err, fmt.Sprintf("ListHabilitations %+v", c.filter))
		assertHabilitations(t, fmt.Sprintf("ListHabilitations %+v", c.filter), got, c.want)
	}
}

// assertHabilitations compares two lists of habilitations, order included
// (assertSameList needs an ID field).
func assertHabilitations(t *testing.T, what string, got, want []storage.Habilitation) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d habilitations %v, want %d %v", what, len(got), habilitationKeys(got), len(want), habilitationKeys(want))
		return
	}
	for i := range got {
		assertSame(t, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

func habilitationKeys(list []storage.Habilitation) []string {
	var out []string
	for _, h := range list {
		out = append(out, h.UserID+"/"+h.ClientID)
	}
	return out
}

// assertAccess checks a GetUserAccess answer: the agent as stored, and the
// habilitation want, or none when want is nil.
func assertAccess(t *testing.T, what string, got storage.UserAccess, user storage.User, want *storage.Habilitation) {
	t.Helper()
	assertSame(t, what+": user", got.User, user)
	switch {
	case want == nil && got.Habilitation != nil:
		t.Errorf("%s: habilitation %+v, want none", what, *got.Habilitation)
	case want != nil && got.Habilitation == nil:
		t.Errorf("%s: no habilitation, want %+v", what, *want)
	case want != nil:
		assertSame(t, what+": habilitation", *got.Habilitation, *want)
	}
}

func testUserAccess(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	habilitationWorld(t, s, now)
	u1 := newUser("u-1", "agent@example.fr", now)
	u2 := newUser("u-2", "collegue@example.fr", now)

	got, err := s.GetUserAccess(ctx, "u-1", "paie", now)
	mustOK(t, err, "GetUserAccess before any grant")
	assertAccess(t, "GetUserAccess before any grant", got, u1, nil)

	h := addHabilitation(t, s, "u-1", "paie", now)
	// No roles, no end: still a habilitation, told apart from none.
	bare := storage.Habilitation{UserID: "u-2", ClientID: "portail", GrantedAt: now, GrantedBy: "admin"}
	mustOK(t, s.GrantHabilitation(ctx, bare), "GrantHabilitation without end nor roles")

	got, err = s.GetUserAccess(ctx, "u-1", "paie", now)
	mustOK(t, err, "GetUserAccess")
	assertAccess(t, "GetUserAccess", got, u1, &h)
	got, err = s.GetUserAccess(ctx, "u-2", "portail", now.Add(10*365*24*time.Hour))
	mustOK(t, err, "GetUserAccess without roles")
	assertAccess(t, "GetUserAccess without roles", got, u2, &bare)
	// Another client's, or another agent's, habilitation is not this one.
	got, err = s.GetUserAccess(ctx, "u-1", "portail", now)
	mustOK(t, err, "GetUserAccess of another client")
	assertAccess(t, "GetUserAccess of another client", got, u1, nil)
	got, err = s.GetUserAccess(ctx, "u-2", "paie", now)
	mustOK(t, err, "GetUserAccess of another agent")
	assertAccess(t, "GetUserAccess of another agent", got, u2, nil)
	got, err = s.GetUserAccess(ctx, "u-1", "inconnu", now)
	mustOK(t, err, "GetUserAccess of an unknown client")
	assertAccess(t, "GetUserAccess of an unknown client", got, u1, nil)

	// The agent's state is read as it is now: the gate decides on it.
	mustOK(t, s.SetUserDisabled(ctx, "u-1", true, now), "SetUserDisabled")
	u1.Disabled = true
	got, err = s.GetUserAccess(ctx, "u-1", "paie", now)
	mustOK(t, err, "GetUserAccess of a disabled agent")
	assertAccess(t, "GetUserAccess of a disabled agent", got, u1, &h)

	mustOK(t, s.RevokeHabilitation(ctx, "u-1", "paie"), "RevokeHabilitation")
	got, err = s.GetUserAccess(ctx, "u-1", "paie", now)
	mustOK(t, err, "GetUserAccess after revoke")
	assertAccess(t, "GetUserAccess after revoke", got, u1, nil)

	// Only an unknown agent is not found, habilitation or not.
	_, err = s.GetUserAccess(ctx, "u-9", "paie", now)
	wantErr(t, err, storage.ErrNotFound, "GetUserAccess of an unknown agent")
	_, err = s.GetUserAccess(ctx, "u-9", "", now)
	wantErr(t, err, storage.ErrNotFound, "GetUserAccess of an unknown agent without client")
}

func testUserAccessUntil(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	habilitationWorld(t, s, now)
	u1 := newUser("u-1", "agent@example.fr", now)
	h := addHabilitation(t, s, "u-1", "paie", now)

	got, err := s.GetUserAccess(ctx, "u-1", "paie", h.Until.Add(-time.Millisecond))
	mustOK(t, err, "GetUserAccess just before Until")
	assertAccess(t, "GetUserAccess just before Until", got, u1, &h)
	for _, at := range []time.Time{*h.Until, h.Until.Add(time.Second)} {
		got, err = s.GetUserAccess(ctx, "u-1", "paie", at)
		mustOK(t, err, "GetUserAccess at or after Until")
		assertAccess(t, fmt.Sprintf("GetUserAccess at Until%+v", at.Sub(*h.Until)), got, u1, nil)
	}
}

// bulkImporter is s's optional bulk capability; engines without one skip
// the behaviour.
func bulkImporter(t *testing.T, s storage.Store) storage.BulkImporter {
	t.Helper()
	b, ok := s.(storage.BulkImporter)
	if !ok {
		t.Skip("the engine has no storage.BulkImporter")
	}
	return b
}

// GrantHabilitations is GrantHabilitation for each, in order: new pairs are
// created, an existing one is replaced, and a pair given twice ends with the
// later one.
func testGrantHabilitations(t *testing.T, s storage.Store) {
	ctx := t.Context()
	bulk := bulkImporter(t, s)
	now := start()
	habilitationWorld(t, s, now)
	addHabilitation(t, s, "u-1", "paie", now)

	mustOK(t, bulk.GrantHabilitations(ctx, nil), "GrantHabilitations of nothing")
	later := now.Add(time.Hour)
	u1paie := storage.Habilitation{UserID: "u-1", ClientID: "paie", Roles: []string{"lecture"},
		GrantedAt: later, GrantedBy: "import"}
	u2paie := newHabilitation("u-2", "paie", later)
	firstU2portail := newHabilitation("u-2", "portail", later)
	u2portail := storage.Habilitation{UserID: "u-2", ClientID: "portail", GrantedAt: later, GrantedBy: "import"}
	mustOK(t, bulk.GrantHabilitations(ctx, []storage.Habilitation{u2paie, firstU2portail, u1paie, u2portail}),
		"GrantHabilitations")

	list, err := s.ListHabilitations(ctx, storage.HabilitationFilter{})
	mustOK(t, err, "ListHabilitations")
	assertHabilitations(t, "habilitations after GrantHabilitations", list,
		[]storage.Habilitation{u1paie, u2paie, u2portail})
}

// A row that cannot be granted (its agent or client unknown, or removed
// meanwhile) fails the whole call: the rows before it, new or replacing,
// leave nothing behind.
func testGrantHabilitationsAllOrNothing(t *testing.T, s storage.Store) {
	ctx := t.Context()
	bulk := bulkImporter(t, s)
	now := start()
	habilitationWorld(t, s, now)
	addClient(t, s, "annuaire", now)
	before := addHabilitation(t, s, "u-1", "paie", now)
	mustOK(t, s.DeleteClient(ctx, "annuaire"), "DeleteClient")

	later := now.Add(time.Hour)
	good := []storage.Habilitation{
		{UserID: "u-1", ClientID: "paie", Roles: []string{"lecture"}, GrantedAt: later, GrantedBy: "import"},
		newHabilitation("u-2", "paie", later),
		newHabilitation("u-1", "portail", later),
	}
	for _, bad := range []storage.Habilitation{
		newHabilitation("u-9", "portail", later),
		newHabilitation("u-2", "inconnu", later),
		newHabilitation("u-2", "annuaire", later),
	} {
		what := fmt.Sprintf("GrantHabilitations with %s/%s last", bad.UserID, bad.ClientID)
		wantErr(t, bulk.GrantHabilitations(ctx, append(good[:len(good):len(good)], bad)), storage.ErrNotFound, what)
		list, err := s.ListHabilitations(ctx, storage.HabilitationFilter{})
		mustOK(t, err, "ListHabilitations")
		assertHabilitations(t, "habilitations after "+what, list, []storage.Habilitation{before})
	}
}
