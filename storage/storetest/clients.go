package storetest

import (
	"testing"

	"github.com/caf-extranet/idp/storage"
)

func clientBehaviours() []behaviour {
	return []behaviour{
		{"CreateAndGet", testClientCreateAndGet},
		{"Duplicate", testClientDuplicate},
		{"ListOrderedByID", testClientList},
		{"Delete", testClientDelete},
		{"DeleteRevokesTokensAndHabilitations", testClientDeleteRevokes},
		{"SetRestricted", testClientSetRestricted},
	}
}

func testClientCreateAndGet(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	confidential := newClient("portail", now)
	mustOK(t, s.CreateClient(ctx, confidential), "CreateClient confidential")
	public := storage.Client{
		ID:           "appli-mobile",
		Name:         "Application mobile",
		Public:       true,
		RedirectURIs: []string{"fr.example.appli:/callback"},
		CreatedAt:    now,
	}
	mustOK(t, s.CreateClient(ctx, public), "CreateClient public")
	restricted := newClient("paie", now)
	restricted.Restricted = true
	mustOK(t, s.CreateClient(ctx, restricted), "CreateClient restricted")

	got, err := s.GetClient(ctx, "portail")
	mustOK(t, err, "GetClient portail")
	assertSame(t, "confidential client", got, confidential)
	got, err = s.GetClient(ctx, "appli-mobile")
	mustOK(t, err, "GetClient appli-mobile")
	assertSame(t, "public client", got, public)
	got, err = s.GetClient(ctx, "paie")
	mustOK(t, err, "GetClient paie")
	assertSame(t, "restricted client", got, restricted)
	list, err := s.ListClients(ctx)
	mustOK(t, err, "ListClients")
	assertSameList(t, "ListClients", list, []storage.Client{public, restricted, confidential})

	_, err = s.GetClient(ctx, "inconnu")
	wantErr(t, err, storage.ErrNotFound, "GetClient unknown")
}

func testClientDuplicate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	c := addClient(t, s, "portail", now)
	dup := newClient("portail", now)
	dup.Name = "Usurpateur"
	wantErr(t, s.CreateClient(ctx, dup), storage.ErrDuplicate, "CreateClient same id")
	got, err := s.GetClient(ctx, "portail")
	mustOK(t, err, "GetClient")
	assertSame(t, "client after a refused duplicate", got, c)
}

func testClientList(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	list, err := s.ListClients(ctx)
	mustOK(t, err, "ListClients on an empty store")
	assertIDs(t, "ListClients on an empty store", list)

	c := addClient(t, s, "c", now)
	a := addClient(t, s, "a", now)
	b := addClient(t, s, "b", now)
	list, err = s.ListClients(ctx)
	mustOK(t, err, "ListClients")
	assertSameList(t, "ListClients", list, []storage.Client{a, b, c})
}

func testClientDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	keep := addClient(t, s, "intranet", now)
	mustOK(t, s.DeleteClient(ctx, "portail"), "DeleteClient")
	_, err := s.GetClient(ctx, "portail")
	wantErr(t, err, storage.ErrNotFound, "GetClient after delete")
	wantErr(t, s.DeleteClient(ctx, "portail"), storage.ErrNotFound, "DeleteClient again")
	wantErr(t, s.DeleteClient(ctx, "inconnu"), storage.ErrNotFound, "DeleteClient unknown")
	list, err := s.ListClients(ctx)
	mustOK(t, err, "ListClients")
	assertSameList(t, "ListClients after delete", list, []storage.Client{keep})
}

// Deleting a client leaves it no way in: its tokens (of every grant and
// agent) are revoked and its habilitations deleted, while other clients'
// stay.
func testClientDeleteRevokes(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	addClient(t, s, "intranet", now)
	addUser(t, s, "u-1", "agent@example.fr", now)
	addUser(t, s, "u-2", "collegue@example.fr", now)
	at1, rt1 := addGrant(t, s, "g-1", "portail", "u-1", now)
	at2, rt2 := addGrant(t, s, "g-2", "portail", "u-2", now)
	keepAT, keepRT := addGrant(t, s, "g-3", "intranet", "u-1", now)
	gone := addHabilitation(t, s, "u-1", "portail", now)
	keep := addHabilitation(t, s, "u-1", "intranet", now)

	mustOK(t, s.DeleteClient(ctx, "portail"), "DeleteClient")
	assertGrantRevoked(t, s, at1, rt1, now)
	assertGrantRevoked(t, s, at2, rt2, now)
	assertGrantLive(t, s, keepAT, keepRT, now)
	_, err := s.GetHabilitation(ctx, gone.UserID, gone.ClientID, now)
	wantErr(t, err, storage.ErrNotFound, "GetHabilitation of the deleted client")
	list, err := s.ListHabilitations(ctx, storage.HabilitationFilter{})
	mustOK(t, err, "ListHabilitations")
	assertHabilitations(t, "habilitations after DeleteClient", list, []storage.Habilitation{keep})

	// A client created again under the same id starts with nothing.
	addClient(t, s, "portail", now)
	_, err = s.GetHabilitation(ctx, gone.UserID, gone.ClientID, now)
	wantErr(t, err, storage.ErrNotFound, "GetHabilitation of the client created again")
	assertGrantRevoked(t, s, at1, rt1, now)
}

func testClientSetRestricted(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	c := addClient(t, s, "paie", now)
	other := addClient(t, s, "portail", now)

	mustOK(t, s.SetClientRestricted(ctx, "paie", true), "SetClientRestricted true")
	got, err := s.GetClient(ctx, "paie")
	mustOK(t, err, "GetClient")
	want := c
	want.Restricted = true
	assertSame(t, "client restricted", got, want)
	got, err = s.GetClient(ctx, "portail")
	mustOK(t, err, "GetClient portail")
	assertSame(t, "other client", got, other)

	// Setting the value it already has is not "not found".
	mustOK(t, s.SetClientRestricted(ctx, "paie", true), "SetClientRestricted true again")
	mustOK(t, s.SetClientRestricted(ctx, "paie", false), "SetClientRestricted false")
	got, err = s.GetClient(ctx, "paie")
	mustOK(t, err, "GetClient")
	assertSame(t, "client open again", got, c)

	wantErr(t, s.SetClientRestricted(ctx, "inconnu", true), storage.ErrNotFound, "SetClientRestricted unknown")
}
