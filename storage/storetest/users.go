package storetest

import (
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func userBehaviours() []behaviour {
	return []behaviour{
		{"CreateAndGet", testUserCreateAndGet},
		{"EmailIsNormalised", testUserEmailNormalised},
		{"Duplicate", testUserDuplicate},
		{"Unknown", testUserUnknown},
		{"ListOrderedByEmail", testUserList},
		{"GetManyByEmail", testUsersByEmail},
		{"DisableEndsSessionsAndTokens", testUserDisable},
		{"UpdatePasswordHashCompareAndSwap", testUserUpdatePasswordHash},
		{"PendingPasswordChange", testUserPendingFlag},
	}
}

func testUserCreateAndGet(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	u := newUser("u-1", "agent@example.fr", now)
	mustOK(t, s.CreateUser(ctx, u), "CreateUser")
	// An agent onboarded without a personal password yet.
	bare := newUser("u-2", "nouvel.agent@example.fr", now.Add(time.Second))
	bare.PasswordHash, bare.PendingPasswordChange = "", true
	mustOK(t, s.CreateUser(ctx, bare), "CreateUser without password")

	got, err := s.GetUser(ctx, "u-1")
	mustOK(t, err, "GetUser")
	assertSame(t, "GetUser", got, u)
	got, err = s.GetUser(ctx, "u-2")
	mustOK(t, err, "GetUser u-2")
	assertSame(t, "GetUser u-2", got, bare)
	got, err = s.GetUserByEmail(ctx, "agent@example.fr")
	mustOK(t, err, "GetUserByEmail")
	assertSame(t, "GetUserByEmail", got, u)
}

func testUserEmailNormalised(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	mustOK(t, s.CreateUser(ctx, newUser("u-1", "agent@example.fr", now)), "CreateUser")
	got, err := s.GetUserByEmail(ctx, " Agent@Example.FR ")
	mustOK(t, err, "GetUserByEmail with spaces and capitals")
	if got.ID != "u-1" {
		t.Errorf("GetUserByEmail found %q, want u-1", got.ID)
	}

	// An address given in another form is stored normalised.
	mixed := newUser("u-2", "  Jeanne.Martin@CAF.example.FR", now)
	mustOK(t, s.CreateUser(ctx, mixed), "CreateUser with a non-normalised e-mail")
	got, err = s.GetUser(ctx, "u-2")
	mustOK(t, err, "GetUser u-2")
	if got.Email != "jeanne.martin@caf.example.fr" {
		t.Errorf("stored e-mail = %q, want %q", got.Email, "jeanne.martin@caf.example.fr")
	}
	got, err = s.GetUserByEmail(ctx, "jeanne.martin@caf.example.fr")
	mustOK(t, err, "GetUserByEmail normalised")
	if got.ID != "u-2" {
		t.Errorf("GetUserByEmail found %q, want u-2", got.ID)
	}
}

func testUserDuplicate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	mustOK(t, s.CreateUser(ctx, newUser("u-1", "agent@example.fr", now)), "CreateUser")
	wantErr(t, s.CreateUser(ctx, newUser("u-2", "agent@example.fr", now)), storage.ErrDuplicate, "CreateUser same e-mail")
	wantErr(t, s.CreateUser(ctx, newUser("u-3", "AGENT@Example.fr", now)), storage.ErrDuplicate, "CreateUser same e-mail in capitals")
	wantErr(t, s.CreateUser(ctx, newUser("u-1", "autre@example.fr", now)), storage.ErrDuplicate, "CreateUser same id")

	users, err := s.ListUsers(ctx)
	mustOK(t, err, "ListUsers")
	assertIDs(t, "ListUsers after refused duplicates", users, "u-1")
}

func testUserUnknown(t *testing.T, s storage.Store) {
	ctx := t.Context()
	_, err := s.GetUser(ctx, "nobody")
	wantErr(t, err, storage.ErrNotFound, "GetUser unknown")
	_, err = s.GetUserByEmail(ctx, "nobody@example.fr")
	wantErr(t, err, storage.ErrNotFound, "GetUserByEmail unknown")
}

func testUserList(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	users, err := s.ListUsers(ctx)
	mustOK(t, err, "ListUsers on an empty store")
	assertIDs(t, "ListUsers on an empty store", users)

	zoe := addUser(t, s, "u-1", "zoe@example.fr", now)
	alice := addUser(t, s, "u-2", "alice@example.fr", now)
	marc := addUser(t, s, "u-3", "marc@example.fr", now)
	users, err = s.ListUsers(ctx)
	mustOK(t, err, "ListUsers")
	assertSameList(t, "ListUsers", users, []storage.User{alice, marc, zoe})
}

func testUserDisable(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	u := addUser(t, s, "u-1", "agent@example.fr", now)
	addUser(t, s, "u-2", "collegue@example.fr", now)
	addSession(t, s, "s-1", "u-1", now)
	addSession(t, s, "s-2", "u-1", now)
	addSession(t, s, "s-other", "u-2", now)
	at, rt := addGrant(t, s, "g-1", "portail", "u-1", now)
	otherAT, otherRT := addGrant(t, s, "g-other", "portail", "u-2", now)

	later := now.Add(time.Minute)
	mustOK(t, s.SetUserDisabled(ctx, "u-1", true, later), "SetUserDisabled true")
	got, err := s.GetUser(ctx, "u-1")
	mustOK(t, err, "GetUser")
	want := u
	want.Disabled, want.UpdatedAt = true, later
	assertSame(t, "disabled user", got, want)
	assertSessionGone(t, s, "s-1", later)
	assertSessionGone(t, s, "s-2", later)
	assertGrantRevoked(t, s, at, rt, later)
	// Only that agent is affected.
	assertSessionLive(t, s, "s-other", later)
	assertGrantLive(t, s, otherAT, otherRT, later)

	evenLater := later.Add(time.Minute)
	mustOK(t, s.SetUserDisabled(ctx, "u-1", false, evenLater), "SetUserDisabled false")
	got, err = s.GetUser(ctx, "u-1")
	mustOK(t, err, "GetUser")
	want.Disabled, want.UpdatedAt = false, evenLater
	assertSame(t, "re-enabled user", got, want)
}

func testUserUpdatePasswordHash(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	u := addUser(t, s, "u-1", "agent@example.fr", now)

	wantErr(t, s.UpdatePasswordHash(ctx, "u-1", "$argon2id$stale", "$argon2id$new", now.Add(time.Minute)),
		storage.ErrConflict, "UpdatePasswordHash with a wrong old hash")
	got, err := s.GetUser(ctx, "u-1")
	mustOK(t, err, "GetUser")
	assertSame(t, "user after a refused rehash", got, u)

	later := now.Add(2 * time.Minute)
	mustOK(t, s.UpdatePasswordHash(ctx, "u-1", u.PasswordHash, "$argon2id$new", later), "UpdatePasswordHash")
	got, err = s.GetUser(ctx, "u-1")
	mustOK(t, err, "GetUser")
	want := u
	want.PasswordHash, want.UpdatedAt = "$argon2id$new", later
	assertSame(t, "user after rehash", got, want)

	// The old hash no longer matches: a second rehash from it loses.
	wantErr(t, s.UpdatePasswordHash(ctx, "u-1", u.PasswordHash, "$argon2id$newer", later.Add(time.Minute)),
		storage.ErrConflict, "UpdatePasswordHash from the replaced hash")
	got, err = s.GetUser(ctx, "u-1")
	mustOK(t, err, "GetUser")
	assertSame(t, "user after a lost rehash", got, want)
}

func testUserPendingFlag(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	u := addUser(t, s, "u-1", "agent@example.fr", now)
	addUser(t, s, "u-2", "collegue@example.fr", now)

	later := now.Add(time.Minute)
	mustOK(t, s.SetPendingPasswordChange(ctx, "u-1", true, later), "SetPendingPasswordChange true")
	got, err := s.GetUser(ctx, "u-1")
	mustOK(t, err, "GetUser")
	want := u
	want.PendingPasswordChange, want.UpdatedAt = true, later
	assertSame(t, "user marked pending", got, want)
	other, err := s.GetUser(ctx, "u-2")
	mustOK(t, err, "GetUser u-2")
	if other.PendingPasswordChange {
		t.Errorf("another agent was marked pending too")
	}

	evenLater := later.Add(time.Minute)
	mustOK(t, s.SetPendingPasswordChange(ctx, "u-1", false, evenLater), "SetPendingPasswordChange false")
	got, err = s.GetUser(ctx, "u-1")
	mustOK(t, err, "GetUser")
	want.PendingPasswordChange, want.UpdatedAt = false, evenLater
	assertSame(t, "user cleared", got, want)
}

// testUsersByEmail: the known addresses among many, as stored, ordered by
// e-mail, whatever the case typed; unknown ones, repeats and an empty list
// are no error.
func testUsersByEmail(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	b := addUser(t, s, "u-b", "bernard@example.fr", now)
	a := addUser(t, s, "u-a", "anne@example.fr", now)
	addUser(t, s, "u-c", "claire@example.fr", now)
	got, err := s.GetUsersByEmail(ctx, []string{"BERNARD@example.fr", "inconnu@example.fr", " anne@Example.fr", "bernard@example.fr"})
	mustOK(t, err, "GetUsersByEmail")
	assertSameList(t, "GetUsersByEmail", got, []storage.User{a, b})
	got, err = s.GetUsersByEmail(ctx, nil)
	mustOK(t, err, "GetUsersByEmail none")
	assertIDs(t, "GetUsersByEmail none", got)
}
