package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func changePasswordBehaviours() []behaviour {
	return []behaviour{
		{"WithProvisional", testChangeWithProvisional},
		{"WrongProvisionalChangesNothing", testChangeWrongProvisional},
		{"MissingProvisionalChangesNothing", testChangeMissingProvisional},
		{"WithPersonalPassword", testChangeWithPersonal},
		{"WrongPersonalPasswordChangesNothing", testChangeWrongPersonal},
		{"ConcurrentChangesOneWinner", testChangeRace},
	}
}

// passwordWorld is an agent in the middle of a « Mot de passe oublié ? »:
// a personal hash, the pending flag, a provisional password (unless asked
// otherwise), three sessions and a grant; and a colleague with a session and a
// grant, whom nothing may touch.
type passwordWorld struct {
	user                 storage.User
	prov                 *storage.ProvisionalPassword
	keep, drop           storage.Session
	otherSession         storage.Session
	at, otherAT          storage.AccessToken
	rt, otherRT          storage.RefreshToken
	mailsBeforeTheChange []string
}

func newPasswordWorld(t *testing.T, s storage.Store, now time.Time, withProvisional bool) passwordWorld {
	t.Helper()
	ctx := t.Context()
	addClient(t, s, "portail", now)
	var w passwordWorld
	w.user = newUser("u-1", "agent@example.fr", now)
	w.user.PasswordHash, w.user.PendingPasswordChange = "$argon2id$old", true
	mustOK(t, s.CreateUser(ctx, w.user), "CreateUser")
	addUser(t, s, "u-2", "collegue@example.fr", now)
	if withProvisional {
		p := newProvisional("u-1", "$argon2id$prov", now)
		w.prov = &p
		issue := storage.ProvisionalIssue{Password: p, Mail: newMail("mail-prov", "agent@example.fr", now)}
		mustOK(t, s.IssueProvisionalPassword(ctx, issue), "IssueProvisionalPassword")
	}
	w.keep = addSession(t, s, "sess-keep", "u-1", now)
	w.drop = addSession(t, s, "sess-drop", "u-1", now)
	w.otherSession = addSession(t, s, "sess-other", "u-2", now)
	w.at, w.rt = addGrant(t, s, "g-1", "portail", "u-1", now)
	w.otherAT, w.otherRT = addGrant(t, s, "g-other", "portail", "u-2", now)
	mails, err := s.ListMails(ctx, "", 100)
	mustOK(t, err, "ListMails")
	w.mailsBeforeTheChange = ids(mails)
	return w
}

func notification(id string, now time.Time) *storage.OutboxMail {
	m := newMail(id, "agent@example.fr", now)
	m.Subject = "Votre mot de passe a été modifié"
	m.TextBody, m.HTMLBody = "Bonjour,\nvotre mot de passe a été modifié.\n", "<p>Votre mot de passe a été modifié.</p>"
	return &m
}

// assertNothingChanged checks that a refused ChangePassword left every part of
// the world as it was.
func assertNothingChanged(t *testing.T, s storage.Store, w passwordWorld, now time.Time) {
	t.Helper()
	ctx := t.Context()
	got, err := s.GetUser(ctx, w.user.ID)
	mustOK(t, err, "GetUser")
	assertSame(t, "user after a refused change", got, w.user)
	prov, err := s.GetProvisionalPassword(ctx, w.user.ID, now)
	if w.prov != nil {
		mustOK(t, err, "GetProvisionalPassword after a refused change")
		assertSame(t, "provisional password after a refused change", prov, *w.prov)
	} else {
		wantErr(t, err, storage.ErrNotFound, "GetProvisionalPassword after a refused change")
	}
	for _, id := range []string{w.keep.ID, w.drop.ID, w.otherSession.ID} {
		assertSessionLive(t, s, id, now)
	}
	assertGrantLive(t, s, w.at, w.rt, now)
	assertGrantLive(t, s, w.otherAT, w.otherRT, now)
	mails, err := s.ListMails(ctx, "", 100)
	mustOK(t, err, "ListMails")
	assertIDSet(t, "outbox after a refused change", mails, w.mailsBeforeTheChange...)
}

// assertChanged checks everything a successful ChangePassword c does.
func assertChanged(t *testing.T, s storage.Store, w passwordWorld, c storage.PasswordChange) {
	t.Helper()
	ctx := t.Context()
	got, err := s.GetUser(ctx, w.user.ID)
	mustOK(t, err, "GetUser")
	want := w.user
	want.PasswordHash, want.PendingPasswordChange, want.UpdatedAt = c.NewHash, false, c.Now
	assertSame(t, "user after the change", got, want)
	_, err = s.GetProvisionalPassword(ctx, w.user.ID, c.Now)
	wantErr(t, err, storage.ErrNotFound, "GetProvisionalPassword after the change")
	if c.KeepSessionID != "" {
		assertSessionLive(t, s, c.KeepSessionID, c.Now)
	} else {
		assertSessionGone(t, s, w.keep.ID, c.Now)
	}
	assertSessionGone(t, s, w.drop.ID, c.Now)
	assertSessionLive(t, s, w.otherSession.ID, c.Now)
	assertGrantRevoked(t, s, w.at, w.rt, c.Now)
	assertGrantLive(t, s, w.otherAT, w.otherRT, c.Now)

	mails, err := s.ListMails(ctx, "", 100)
	mustOK(t, err, "ListMails")
	assertIDSet(t, "outbox after the change", mails, append(w.mailsBeforeTheChange, c.Notification.ID)...)
	for _, m := range mails {
		if m.ID == c.Notification.ID {
			assertSame(t, "queued notification", m, *c.Notification)
		}
	}
}

func testChangeWithProvisional(t *testing.T, s storage.Store) {
	now := start()
	w := newPasswordWorld(t, s, now, true)
	t1 := now.Add(time.Minute)
	c := storage.PasswordChange{
		UserID:                "u-1",
		NewHash:               "$argon2id$new",
		ExpectProvisionalHash: w.prov.Hash,
		KeepSessionID:         w.keep.ID,
		Notification:          notification("notif-1", t1),
		Now:                   t1,
	}
	mustOK(t, s.ChangePassword(t.Context(), c), "ChangePassword")
	assertChanged(t, s, w, c)

	// The provisional password was consumed: it cannot serve twice.
	again := c
	again.NewHash, again.Notification, again.Now = "$argon2id$again", notification("notif-2", t1), t1.Add(time.Second)
	wantErr(t, s.ChangePassword(t.Context(), again), storage.ErrConflict, "ChangePassword with a consumed provisional password")
}

func testChangeWrongProvisional(t *testing.T, s storage.Store) {
	now := start()
	w := newPasswordWorld(t, s, now, true)
	t1 := now.Add(time.Minute)
	c := storage.PasswordChange{
		UserID:                "u-1",
		NewHash:               "$argon2id$new",
		ExpectProvisionalHash: "$argon2id$an-older-provisional",
		KeepSessionID:         w.keep.ID,
		Notification:          notification("notif-1", t1),
		Now:                   t1,
	}
	wantErr(t, s.ChangePassword(t.Context(), c), storage.ErrConflict, "ChangePassword with a wrong provisional hash")
	assertNothingChanged(t, s, w, t1)
}

func testChangeMissingProvisional(t *testing.T, s storage.Store) {
	now := start()
	w := newPasswordWorld(t, s, now, false)
	t1 := now.Add(time.Minute)
	c := storage.PasswordChange{
		UserID:                "u-1",
		NewHash:               "$argon2id$new",
		ExpectProvisionalHash: "$argon2id$prov",
		KeepSessionID:         w.keep.ID,
		Notification:          notification("notif-1", t1),
		Now:                   t1,
	}
	wantErr(t, s.ChangePassword(t.Context(), c), storage.ErrConflict, "ChangePassword without a provisional password")
	assertNothingChanged(t, s, w, t1)
}

func testChangeWithPersonal(t *testing.T, s storage.Store) {
	now := start()
	w := newPasswordWorld(t, s, now, true)
	t1 := now.Add(time.Minute)
	// A voluntary change from a device not kept signed in: every session goes.
	c := storage.PasswordChange{
		UserID:             "u-1",
		NewHash:            "$argon2id$new",
		ExpectPasswordHash: w.user.PasswordHash,
		Notification:       notification("notif-1", t1),
		Now:                t1,
	}
	mustOK(t, s.ChangePassword(t.Context(), c), "ChangePassword")
	assertChanged(t, s, w, c)

	// The old hash no longer holds.
	again := c
	again.NewHash, again.Notification, again.Now = "$argon2id$again", notification("notif-2", t1), t1.Add(time.Second)
	wantErr(t, s.ChangePassword(t.Context(), again), storage.ErrConflict, "ChangePassword from the replaced hash")
}

func testChangeWrongPersonal(t *testing.T, s storage.Store) {
	now := start()
	w := newPasswordWorld(t, s, now, true)
	t1 := now.Add(time.Minute)
	c := storage.PasswordChange{
		UserID:             "u-1",
		NewHash:            "$argon2id$new",
		ExpectPasswordHash: "$argon2id$not-the-current-one",
		KeepSessionID:      w.keep.ID,
		Notification:       notification("notif-1", t1),
		Now:                t1,
	}
	wantErr(t, s.ChangePassword(t.Context(), c), storage.ErrConflict, "ChangePassword with a wrong personal hash")
	assertNothingChanged(t, s, w, t1)
}

func testChangeRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	w := newPasswordWorld(t, s, now, true)
	t1 := now.Add(time.Minute)
	change := func(i int) storage.PasswordChange {
		return storage.PasswordChange{
			UserID:                "u-1",
			NewHash:               fmt.Sprintf("$argon2id$new-%02d", i),
			ExpectProvisionalHash: w.prov.Hash,
			KeepSessionID:         w.keep.ID,
			Notification:          notification(fmt.Sprintf("notif-%02d", i), t1),
			Now:                   t1,
		}
	}
	errs := race(20, func(i int) error { return s.ChangePassword(ctx, change(i)) })
	winner := oneWinner(t, "ChangePassword", errs, storage.ErrConflict)
	assertChanged(t, s, w, change(winner))

	mails, err := s.ListMails(ctx, "", 100)
	mustOK(t, err, "ListMails")
	var notifications []string
	for _, m := range mails {
		if strings.HasPrefix(m.ID, "notif-") {
			notifications = append(notifications, m.ID)
		}
	}
	if want := fmt.Sprintf("notif-%02d", winner); len(notifications) != 1 || notifications[0] != want {
		t.Errorf("notifications queued = %q, want only the winner's %q", notifications, want)
	}
}
