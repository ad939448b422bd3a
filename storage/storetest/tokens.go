package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func tokenBehaviours() []behaviour {
	return []behaviour{
		{"CreateWithAndWithoutRefresh", testTokensCreate},
		{"AccessTokenExpiredRevokedUnknown", testAccessTokenNotFound},
		{"RefreshTokenExpiredRevokedUnknown", testRefreshTokenNotFound},
		{"RotateThenReplayRevokesFamily", testRotateReplay},
		{"GetRotatedRevokesFamily", testGetRotated},
		{"RotateRefused", testRotateRefused},
		{"ConcurrentRotationsOneWinner", testRotateRace},
		{"RevokeGrant", testRevokeGrant},
		{"RevokeUserTokens", testRevokeUserTokens},
	}
}

// tokenWorld stores the client and agents that tokens refer to.
func tokenWorld(t *testing.T, s storage.Store, now time.Time) {
	t.Helper()
	addClient(t, s, "portail", now)
	addUser(t, s, "u-1", "agent@example.fr", now)
	addUser(t, s, "u-2", "collegue@example.fr", now)
}

func testTokensCreate(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	tokenWorld(t, s, now)

	at := newAccessToken("at-1", "g-1", "portail", "u-1", now)
	rt := newRefreshToken("rt-1", "g-1", "portail", "u-1", now)
	mustOK(t, s.CreateTokens(ctx, at, &rt), "CreateTokens with refresh")
	gotAT, err := s.GetAccessToken(ctx, at.ID, now)
	mustOK(t, err, "GetAccessToken")
	assertSame(t, "access token", gotAT, at)
	gotRT, err := s.GetRefreshToken(ctx, rt.TokenHash, now)
	mustOK(t, err, "GetRefreshToken")
	assertSame(t, "refresh token", gotRT, rt)

	alone := newAccessToken("at-2", "g-2", "portail", "u-1", now)
	alone.Audience = nil
	mustOK(t, s.CreateTokens(ctx, alone, nil), "CreateTokens without refresh")
	gotAT, err = s.GetAccessToken(ctx, alone.ID, now)
	mustOK(t, err, "GetAccessToken without refresh")
	assertSame(t, "access token without refresh", gotAT, alone)
	_, err = s.GetRefreshToken(ctx, "hash-rt-2", now)
	wantErr(t, err, storage.ErrNotFound, "GetRefreshToken of a grant issued without one")
}

func testAccessTokenNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	tokenWorld(t, s, now)
	at, _ := addGrant(t, s, "g-1", "portail", "u-1", now)
	other, _ := addGrant(t, s, "g-2", "portail", "u-1", now)

	_, err := s.GetAccessToken(ctx, at.ID, at.ExpiresAt.Add(-time.Second))
	mustOK(t, err, "GetAccessToken just before expiry")
	_, err = s.GetAccessToken(ctx, at.ID, at.ExpiresAt.Add(time.Second))
	wantErr(t, err, storage.ErrNotFound, "GetAccessToken expired")
	_, err = s.GetAccessToken(ctx, "at-unknown", now)
	wantErr(t, err, storage.ErrNotFound, "GetAccessToken unknown")

	mustOK(t, s.RevokeAccessToken(ctx, at.ID), "RevokeAccessToken")
	_, err = s.GetAccessToken(ctx, at.ID, now)
	wantErr(t, err, storage.ErrNotFound, "GetAccessToken revoked")
	_, err = s.GetAccessToken(ctx, other.ID, now)
	mustOK(t, err, "GetAccessToken of another token")
}

func testRefreshTokenNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	tokenWorld(t, s, now)
	_, rt := addGrant(t, s, "g-1", "portail", "u-1", now)

	_, err := s.GetRefreshToken(ctx, rt.TokenHash, rt.ExpiresAt.Add(-time.Second))
	mustOK(t, err, "GetRefreshToken just before expiry")
	_, err = s.GetRefreshToken(ctx, rt.TokenHash, rt.ExpiresAt.Add(time.Second))
	wantErr(t, err, storage.ErrNotFound, "GetRefreshToken expired")
	_, err = s.GetRefreshToken(ctx, "hash-unknown", now)
	wantErr(t, err, storage.ErrNotFound, "GetRefreshToken unknown")

	mustOK(t, s.RevokeGrant(ctx, "g-1"), "RevokeGrant")
	_, err = s.GetRefreshToken(ctx, rt.TokenHash, now)
	wantErr(t, err, storage.ErrNotFound, "GetRefreshToken revoked")
}

// rotation is a refresh's new pair in grant g-1.
func rotation(n int, now time.Time) (storage.AccessToken, storage.RefreshToken) {
	return newAccessToken(fmt.Sprintf("at-g-1-%d", n), "g-1", "portail", "u-1", now),
		newRefreshToken(fmt.Sprintf("rt-g-1-%d", n), "g-1", "portail", "u-1", now)
}

func testRotateReplay(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	tokenWorld(t, s, now)
	at1, rt1 := addGrant(t, s, "g-1", "portail", "u-1", now)
	otherAT, otherRT := addGrant(t, s, "g-2", "portail", "u-1", now)

	t1 := now.Add(time.Minute)
	at2, rt2 := rotation(2, t1)
	mustOK(t, s.RotateRefreshToken(ctx, rt1.TokenHash, at2, rt2, t1), "RotateRefreshToken")
	got, err := s.GetRefreshToken(ctx, rt2.TokenHash, t1)
	mustOK(t, err, "GetRefreshToken of the new token")
	assertSame(t, "rotated refresh token", got, rt2)
	gotAT, err := s.GetAccessToken(ctx, at2.ID, t1)
	mustOK(t, err, "GetAccessToken of the new pair")
	assertSame(t, "rotated access token", gotAT, at2)

	// The old token presented again: a stolen copy. The whole family goes.
	t2 := t1.Add(time.Minute)
	at3, rt3 := rotation(3, t2)
	err = s.RotateRefreshToken(ctx, rt1.TokenHash, at3, rt3, t2)
	wantErr(t, err, storage.ErrAlreadyUsed, "RotateRefreshToken of an already rotated token")
	assertGrantRevoked(t, s, at2, rt2, t2)
	_, err = s.GetAccessToken(ctx, at1.ID, t2)
	wantErr(t, err, storage.ErrNotFound, "GetAccessToken of the family's first access token")
	// The refused rotation stored nothing.
	assertGrantRevoked(t, s, at3, rt3, t2)
	assertGrantLive(t, s, otherAT, otherRT, t2)
}

func testGetRotated(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	tokenWorld(t, s, now)
	at1, rt1 := addGrant(t, s, "g-1", "portail", "u-1", now)
	otherAT, otherRT := addGrant(t, s, "g-2", "portail", "u-1", now)

	t1 := now.Add(time.Minute)
	at2, rt2 := rotation(2, t1)
	mustOK(t, s.RotateRefreshToken(ctx, rt1.TokenHash, at2, rt2, t1), "RotateRefreshToken")

	t2 := t1.Add(time.Minute)
	_, err := s.GetRefreshToken(ctx, rt1.TokenHash, t2)
	wantErr(t, err, storage.ErrAlreadyUsed, "GetRefreshToken of a rotated token")
	assertGrantRevoked(t, s, at2, rt2, t2)
	_, err = s.GetAccessToken(ctx, at1.ID, t2)
	wantErr(t, err, storage.ErrNotFound, "GetAccessToken of the family's first access token")
	assertGrantLive(t, s, otherAT, otherRT, t2)
}

func testRotateRefused(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	tokenWorld(t, s, now)
	_, rt1 := addGrant(t, s, "g-1", "portail", "u-1", now)

	at2, rt2 := rotation(2, now)
	err := s.RotateRefreshToken(ctx, "hash-unknown", at2, rt2, now)
	wantErr(t, err, storage.ErrNotFound, "RotateRefreshToken unknown")
	assertGrantRevoked(t, s, at2, rt2, now)

	late := rt1.ExpiresAt.Add(time.Second)
	at3, rt3 := rotation(3, late)
	err = s.RotateRefreshToken(ctx, rt1.TokenHash, at3, rt3, late)
	wantErr(t, err, storage.ErrNotFound, "RotateRefreshToken expired")
	assertGrantRevoked(t, s, at3, rt3, late)

	// Still valid before its expiry, until revoked.
	_, err = s.GetRefreshToken(ctx, rt1.TokenHash, now)
	mustOK(t, err, "GetRefreshToken after refused rotations")
	mustOK(t, s.RevokeGrant(ctx, "g-1"), "RevokeGrant")
	at4, rt4 := rotation(4, now)
	err = s.RotateRefreshToken(ctx, rt1.TokenHash, at4, rt4, now)
	wantErr(t, err, storage.ErrNotFound, "RotateRefreshToken revoked")
	assertGrantRevoked(t, s, at4, rt4, now)
}

func testRotateRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	tokenWorld(t, s, now)
	_, rt1 := addGrant(t, s, "g-1", "portail", "u-1", now)
	otherAT, otherRT := addGrant(t, s, "g-2", "portail", "u-1", now)

	t1 := now.Add(time.Minute)
	errs := race(20, func(i int) error {
		at, rt := rotation(100+i, t1)
		return s.RotateRefreshToken(ctx, rt1.TokenHash, at, rt, t1)
	})
	w := oneWinner(t, "RotateRefreshToken", errs, storage.ErrAlreadyUsed)
	// The losers presented a rotated token: each one revoked the family,
	// the winner's new pair included.
	winAT, winRT := rotation(100+w, t1)
	assertGrantRevoked(t, s, winAT, winRT, t1)
	assertGrantLive(t, s, otherAT, otherRT, t1)
}

func testRevokeGrant(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	tokenWorld(t, s, now)
	at1, rt1 := addGrant(t, s, "g-1", "portail", "u-1", now)
	at2, rt2 := rotation(2, now)
	mustOK(t, s.CreateTokens(ctx, at2, &rt2), "CreateTokens second pair of g-1")
	otherAT, otherRT := addGrant(t, s, "g-2", "portail", "u-1", now)

	mustOK(t, s.RevokeGrant(ctx, "g-1"), "RevokeGrant")
	assertGrantRevoked(t, s, at1, rt1, now)
	assertGrantRevoked(t, s, at2, rt2, now)
	assertGrantLive(t, s, otherAT, otherRT, now)
}

func testRevokeUserTokens(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	tokenWorld(t, s, now)
	at1, rt1 := addGrant(t, s, "g-1", "portail", "u-1", now)
	at2, rt2 := addGrant(t, s, "g-2", "portail", "u-1", now)
	alone := newAccessToken("at-alone", "g-3", "portail", "u-1", now)
	mustOK(t, s.CreateTokens(ctx, alone, nil), "CreateTokens without refresh")
	otherAT, otherRT := addGrant(t, s, "g-other", "portail", "u-2", now)
	// Codes not yet exchanged: u-1's dies with its request, u-2's lives; a
	// request u-1 has not completed yet is left alone.
	codeOf := func(id, user string) storage.AuthCode {
		r := newAuthRequest(id, "portail", now)
		r.UserID, r.SessionID, r.AuthTime, r.Done = user, "sess-"+user, now, true
		c := storage.AuthCode{CodeHash: "hash-" + id, AuthRequestID: id, ExpiresAt: now.Add(time.Minute)}
		mustOK(t, s.CreateAuthRequestWithCode(ctx, r, c), "CreateAuthRequestWithCode "+id)
		return c
	}
	code1, code2 := codeOf("ar-u1", "u-1"), codeOf("ar-u2", "u-2")
	pending := newAuthRequest("ar-pending", "portail", now)
	mustOK(t, s.CreateAuthRequest(ctx, pending), "CreateAuthRequest pending")

	mustOK(t, s.RevokeUserTokens(ctx, "u-1"), "RevokeUserTokens")
	assertGrantRevoked(t, s, at1, rt1, now)
	assertGrantRevoked(t, s, at2, rt2, now)
	_, err := s.GetAccessToken(ctx, alone.ID, now)
	wantErr(t, err, storage.ErrNotFound, "GetAccessToken without refresh after RevokeUserTokens")
	assertGrantLive(t, s, otherAT, otherRT, now)
	_, _, err = s.AuthRequestByCode(ctx, code1.CodeHash, now)
	wantErr(t, err, storage.ErrNotFound, "the revoked agent's code not yet exchanged")
	_, _, err = s.AuthRequestByCode(ctx, code2.CodeHash, now)
	mustOK(t, err, "another agent's code")
	_, err = s.GetAuthRequest(ctx, pending.ID, now)
	mustOK(t, err, "a request not completed yet")
}
