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

	got, err := s.GetClient(ctx, "portail")
	mustOK(t, err, "GetClient portail")
	assertSame(t, "confidential client", got, confidential)
	got, err = s.GetClient(ctx, "appli-mobile")
	mustOK(t, err, "GetClient appli-mobile")
	assertSame(t, "public client", got, public)

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
