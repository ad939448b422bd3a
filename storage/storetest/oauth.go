package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

func authRequestBehaviours() []behaviour {
	return []behaviour{
		{"RoundTrip", testAuthRequestRoundTrip},
		{"Expiry", testAuthRequestExpiry},
		{"Complete", testAuthRequestComplete},
		{"Delete", testAuthRequestDelete},
	}
}

func testAuthRequestRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	// Times given in another zone and with microseconds: the store must hand
	// them back in UTC, to the millisecond at least.
	paris := time.FixedZone("CET", 3600)
	zero, hour := int64(0), int64(3600)

	full := newAuthRequest("ar-full", "portail", now)
	full.Scopes = []string{"openid", "offline_access", "email", "profile"}
	full.Prompt = []string{"login", "consent"}
	full.MaxAge = &zero // max_age=0 is meaningful (force a login): not the same as nil
	full.LoginHint = "agent@example.fr"
	full.UILocales = "fr-FR en"
	full.ResponseMode = "form_post"
	full.CreatedAt = now.Add(456 * time.Microsecond).In(paris)
	full.ExpiresAt = now.Add(10*time.Minute + 789*time.Microsecond).In(paris)

	minimal := storage.AuthRequest{
		ID:           "ar-minimal",
		ClientID:     "portail",
		RedirectURI:  "https://portail.example.fr/callback",
		Scopes:       []string{"openid"},
		ResponseType: "code",
		CreatedAt:    now,
		ExpiresAt:    now.Add(10 * time.Minute),
	}
	withMaxAge := newAuthRequest("ar-maxage", "portail", now)
	withMaxAge.MaxAge = &hour

	for _, r := range []storage.AuthRequest{full, minimal, withMaxAge} {
		mustOK(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest "+r.ID)
	}
	for _, r := range []storage.AuthRequest{full, minimal, withMaxAge} {
		got, err := s.GetAuthRequest(ctx, r.ID, now)
		mustOK(t, err, "GetAuthRequest "+r.ID)
		assertSame(t, r.ID, got, r)
	}
	_, err := s.GetAuthRequest(ctx, "ar-unknown", now)
	wantErr(t, err, storage.ErrNotFound, "GetAuthRequest unknown")
}

func testAuthRequestExpiry(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	r := newAuthRequest("ar-1", "portail", now)
	mustOK(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")

	_, err := s.GetAuthRequest(ctx, r.ID, r.ExpiresAt.Add(-time.Second))
	mustOK(t, err, "GetAuthRequest just before expiry")
	_, err = s.GetAuthRequest(ctx, r.ID, r.ExpiresAt.Add(time.Second))
	wantErr(t, err, storage.ErrNotFound, "GetAuthRequest after expiry")
}

func testAuthRequestComplete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	addUser(t, s, "u-1", "agent@example.fr", now)
	addSession(t, s, "sess-1", "u-1", now)
	r := newAuthRequest("ar-1", "portail", now)
	r.Prompt = []string{"login"}
	mustOK(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
	other := newAuthRequest("ar-2", "portail", now)
	mustOK(t, s.CreateAuthRequest(ctx, other), "CreateAuthRequest ar-2")

	authTime := now.Add(42*time.Second + 123*time.Microsecond)
	amr := []string{"pwd", "captcha"}
	mustOK(t, s.CompleteAuthRequest(ctx, r.ID, "u-1", "sess-1", authTime, amr), "CompleteAuthRequest")

	got, err := s.GetAuthRequest(ctx, r.ID, now.Add(time.Minute))
	mustOK(t, err, "GetAuthRequest")
	want := r
	want.UserID, want.SessionID, want.AuthTime, want.AMR, want.Done = "u-1", "sess-1", authTime, amr, true
	assertSame(t, "completed auth request", got, want)

	got, err = s.GetAuthRequest(ctx, other.ID, now.Add(time.Minute))
	mustOK(t, err, "GetAuthRequest ar-2")
	assertSame(t, "untouched auth request", got, other)
}

func testAuthRequestDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	r := newAuthRequest("ar-1", "portail", now)
	mustOK(t, s.CreateAuthRequest(ctx, r), "CreateAuthRequest")
	other := newAuthRequest("ar-2", "portail", now)
	mustOK(t, s.CreateAuthRequest(ctx, other), "CreateAuthRequest ar-2")

	mustOK(t, s.DeleteAuthRequest(ctx, r.ID), "DeleteAuthRequest")
	_, err := s.GetAuthRequest(ctx, r.ID, now)
	wantErr(t, err, storage.ErrNotFound, "GetAuthRequest after delete")
	_, err = s.GetAuthRequest(ctx, other.ID, now)
	mustOK(t, err, "GetAuthRequest of another request")
}

func authCodeBehaviours() []behaviour {
	return []behaviour{
		{"ConsumeOnceThenReuseRevokesGrant", testCodeConsumeOnce},
		{"ExpiredOrUnknown", testCodeExpiredOrUnknown},
		{"AuthRequestGone", testCodeAuthRequestGone},
		{"ReuseAfterAuthRequestDeleted", testCodeReuseAfterAuthRequestDeleted},
		{"ConcurrentConsumersOneWinner", testCodeRace},
		{"ReuseBeforeTokensStoredRefusesThem", testCodeReuseBeforeTokens},
		{"ReuseRacingTokenIssueLeavesNoLiveToken", testCodeReuseRacingTokens},
	}
}

// codeWorld stores a client, an agent with a session, a completed auth request
// and its code (valid for a minute), and returns the auth request.
func codeWorld(t *testing.T, s storage.Store, now time.Time) storage.AuthRequest {
	t.Helper()
	addClient(t, s, "portail", now)
	addUser(t, s, "u-1", "agent@example.fr", now)
	addSession(t, s, "sess-1", "u-1", now)
	ar := addCompletedAuthRequest(t, s, "ar-1", "portail", "u-1", "sess-1", now)
	code := storage.AuthCode{CodeHash: "code-1", AuthRequestID: ar.ID, ExpiresAt: now.Add(time.Minute)}
	mustOK(t, s.SaveAuthCode(t.Context(), code), "SaveAuthCode")
	return ar
}

func testCodeConsumeOnce(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	ar := codeWorld(t, s, now)

	got, err := s.ConsumeAuthCode(ctx, "code-1", now.Add(10*time.Second))
	mustOK(t, err, "ConsumeAuthCode")
	assertSame(t, "auth request of the code", got, ar)

	// The exchange issued tokens for the grant; another grant exists too.
	at, rt := addGrant(t, s, ar.ID, "portail", "u-1", now.Add(10*time.Second))
	otherAT, otherRT := addGrant(t, s, "ar-other", "portail", "u-1", now)

	_, err = s.ConsumeAuthCode(ctx, "code-1", now.Add(20*time.Second))
	wantErr(t, err, storage.ErrAlreadyUsed, "ConsumeAuthCode a second time")
	assertGrantRevoked(t, s, at, rt, now.Add(20*time.Second))
	assertGrantLive(t, s, otherAT, otherRT, now.Add(20*time.Second))

	_, err = s.ConsumeAuthCode(ctx, "code-1", now.Add(30*time.Second))
	wantErr(t, err, storage.ErrAlreadyUsed, "ConsumeAuthCode a third time")
}

func testCodeExpiredOrUnknown(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	codeWorld(t, s, now)

	_, err := s.ConsumeAuthCode(ctx, "code-1", now.Add(2*time.Minute))
	wantErr(t, err, storage.ErrNotFound, "ConsumeAuthCode expired")
	_, err = s.ConsumeAuthCode(ctx, "code-unknown", now)
	wantErr(t, err, storage.ErrNotFound, "ConsumeAuthCode unknown")
}

func testCodeAuthRequestGone(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	ar := codeWorld(t, s, now)
	mustOK(t, s.DeleteAuthRequest(ctx, ar.ID), "DeleteAuthRequest")

	_, err := s.ConsumeAuthCode(ctx, "code-1", now.Add(10*time.Second))
	wantErr(t, err, storage.ErrNotFound, "ConsumeAuthCode whose auth request is gone")
}

func testCodeReuseAfterAuthRequestDeleted(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	ar := codeWorld(t, s, now)

	// A normal exchange: consume, issue tokens, delete the auth request.
	_, err := s.ConsumeAuthCode(ctx, "code-1", now.Add(10*time.Second))
	mustOK(t, err, "ConsumeAuthCode")
	at, rt := addGrant(t, s, ar.ID, "portail", "u-1", now.Add(10*time.Second))
	mustOK(t, s.DeleteAuthRequest(ctx, ar.ID), "DeleteAuthRequest")

	// A replay must still be recognised as such, and revoke the grant.
	_, err = s.ConsumeAuthCode(ctx, "code-1", now.Add(20*time.Second))
	wantErr(t, err, storage.ErrAlreadyUsed, "ConsumeAuthCode replayed after the auth request was deleted")
	assertGrantRevoked(t, s, at, rt, now.Add(20*time.Second))
}

func testCodeRace(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	ar := codeWorld(t, s, now)
	got := make([]storage.AuthRequest, 20)
	errs := race(20, func(i int) error {
		var err error
		got[i], err = s.ConsumeAuthCode(ctx, "code-1", now.Add(10*time.Second))
		return err
	})
	w := oneWinner(t, "ConsumeAuthCode", errs, storage.ErrAlreadyUsed)
	assertSame(t, fmt.Sprintf("auth request returned to the winner %d", w), got[w], ar)
}

// The reuse lands between the legitimate exchange's ConsumeAuthCode and its
// CreateTokens: the revocation found nothing to revoke, so the tokens must be
// born revoked when they come (the exchange still answers once).
func testCodeReuseBeforeTokens(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	ar := codeWorld(t, s, now)
	otherAT, otherRT := addGrant(t, s, "ar-other", "portail", "u-1", now)

	_, err := s.ConsumeAuthCode(ctx, "code-1", now.Add(10*time.Second))
	mustOK(t, err, "ConsumeAuthCode")
	_, err = s.ConsumeAuthCode(ctx, "code-1", now.Add(11*time.Second))
	wantErr(t, err, storage.ErrAlreadyUsed, "ConsumeAuthCode reused")

	at := newAccessToken("at-late", ar.ID, "portail", "u-1", now.Add(12*time.Second))
	rt := newRefreshToken("rt-late", ar.ID, "portail", "u-1", now.Add(12*time.Second))
	mustOK(t, s.CreateTokens(ctx, at, &rt), "CreateTokens after the reuse")
	alone := newAccessToken("at-late-alone", ar.ID, "portail", "u-1", now.Add(12*time.Second))
	mustOK(t, s.CreateTokens(ctx, alone, nil), "CreateTokens without refresh after the reuse")

	// Stored, but dead.
	later := now.Add(13 * time.Second)
	for _, id := range []string{at.ID, alone.ID} {
		_, err = s.GetAccessToken(ctx, id, later)
		wantErr(t, err, storage.ErrNotFound, "GetAccessToken "+id)
	}
	_, err = s.GetRefreshToken(ctx, rt.TokenHash, later)
	wantErr(t, err, storage.ErrNotFound, "GetRefreshToken of the born-revoked refresh token")
	assertGrantLive(t, s, otherAT, otherRT, later)
}

// The reuse and the legitimate CreateTokens race, many times: whichever
// commits first, no token of the grant may be left usable.
func testCodeReuseRacingTokens(t *testing.T, s storage.Store) {
	ctx := t.Context()
	now := start()
	addClient(t, s, "portail", now)
	addUser(t, s, "u-1", "agent@example.fr", now)
	addSession(t, s, "sess-1", "u-1", now)
	const rounds = 15
	for i := range rounds {
		ar := addCompletedAuthRequest(t, s, fmt.Sprintf("ar-%d", i), "portail", "u-1", "sess-1", now)
		code := fmt.Sprintf("code-%d", i)
		mustOK(t, s.SaveAuthCode(ctx, storage.AuthCode{CodeHash: code, AuthRequestID: ar.ID, ExpiresAt: now.Add(time.Minute)}), "SaveAuthCode")
		_, err := s.ConsumeAuthCode(ctx, code, now)
		mustOK(t, err, "ConsumeAuthCode "+code)

		at := newAccessToken("at-"+ar.ID, ar.ID, "portail", "u-1", now)
		rt := newRefreshToken("rt-"+ar.ID, ar.ID, "portail", "u-1", now)
		errs := race(2, func(g int) error {
			if g == 0 {
				return s.CreateTokens(ctx, at, &rt)
			}
			_, err := s.ConsumeAuthCode(ctx, code, now)
			return err
		})
		if errs[0] != nil {
			t.Errorf("round %d: CreateTokens: %v, want nil (born revoked when the reuse came first)", i, errs[0])
		}
		wantErr(t, errs[1], storage.ErrAlreadyUsed, fmt.Sprintf("round %d: ConsumeAuthCode reused", i))
		_, err = s.GetAccessToken(ctx, at.ID, now)
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("round %d: access token of the reused grant", i))
		_, err = s.GetRefreshToken(ctx, rt.TokenHash, now)
		wantErr(t, err, storage.ErrNotFound, fmt.Sprintf("round %d: refresh token of the reused grant", i))
	}

}
