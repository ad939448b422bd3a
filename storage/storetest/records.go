package storetest

import (
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// Record constructors: every field set (slices deliberately out of
// alphabetical order, so that an engine sorting them is caught), times taken
// from the caller's fake clock.

func newUser(id, email string, now time.Time) storage.User {
	return storage.User{
		ID:           id,
		Email:        email,
		Name:         "Agent " + id,
		Organisation: "CAF de la Gironde",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$c2VsLQ$" + id,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
}

func newClient(id string, now time.Time) storage.Client {
	return storage.Client{
		ID:                     id,
		Name:                   "Portail " + id,
		SecretHash:             "$argon2id$v=19$m=65536,t=3,p=2$c2VsLQ$secret-" + id,
		RedirectURIs:           []string{"https://" + id + ".example.fr/retour", "https://" + id + ".example.fr/callback"},
		PostLogoutRedirectURIs: []string{"https://" + id + ".example.fr/", "https://" + id + ".example.fr/au-revoir"},
		HomeURL:                "https://" + id + ".example.fr/accueil",
		AllowRefresh:           true,
		CreatedAt:              now,
	}
}

func newAuthRequest(id, clientID string, now time.Time) storage.AuthRequest {
	return storage.AuthRequest{
		ID:                  id,
		ClientID:            clientID,
		RedirectURI:         "https://" + clientID + ".example.fr/callback",
		State:               "state-" + id,
		Nonce:               "nonce-" + id,
		Scopes:              []string{"openid", "profile", "email"},
		ResponseType:        "code",
		ResponseMode:        "query",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		UILocales:           "fr",
		CreatedAt:           now,
		ExpiresAt:           now.Add(10 * time.Minute),
	}
}

func newAccessToken(id, grantID, clientID, userID string, now time.Time) storage.AccessToken {
	return storage.AccessToken{
		ID:        id,
		GrantID:   grantID,
		ClientID:  clientID,
		UserID:    userID,
		Scopes:    []string{"openid", "profile", "email"},
		Audience:  []string{clientID, "https://api.example.fr"},
		ExpiresAt: now.Add(time.Hour),
		CreatedAt: now,
	}
}

func newRefreshToken(id, grantID, clientID, userID string, now time.Time) storage.RefreshToken {
	return storage.RefreshToken{
		ID:        id,
		TokenHash: "hash-" + id,
		GrantID:   grantID,
		ClientID:  clientID,
		UserID:    userID,
		Scopes:    []string{"openid", "offline_access", "email"},
		Audience:  []string{clientID},
		AMR:       []string{"pwd", "captcha"},
		AuthTime:  now.Add(-time.Minute),
		ExpiresAt: now.Add(30 * 24 * time.Hour),
		CreatedAt: now,
	}
}

func newSession(id, userID string, now time.Time) storage.Session {
	return storage.Session{
		ID:                id,
		UserID:            userID,
		Kind:              storage.SessionActive,
		AuthTime:          now,
		AMR:               []string{"pwd", "captcha"},
		CreatedAt:         now,
		LastSeenAt:        now,
		IdleExpiresAt:     now.Add(30 * time.Minute),
		AbsoluteExpiresAt: now.Add(time.Hour),
	}
}

// addChallenge stores c as the login pages do, under a counter of its own
// whose window outlasts any test.
func addChallenge(t *testing.T, s storage.Store, c storage.Challenge) {
	t.Helper()
	_, err := s.CreateCountedChallenge(t.Context(), "test:challenge:"+c.ID, 10*365*24*time.Hour, 1, c, c.CreatedAt)
	mustOK(t, err, "CreateCountedChallenge "+c.ID)
}

func newChallenge(id string, now time.Time) storage.Challenge {
	return storage.Challenge{
		ID:          id,
		Kind:        storage.ChallengeImage,
		AnswerHash:  "answer-" + id,
		BindingHash: "binding-" + id,
		CreatedAt:   now,
		ExpiresAt:   now.Add(5 * time.Minute),
	}
}

func newRecoveryJob(id, email string, now time.Time) storage.RecoveryJob {
	return storage.RecoveryJob{
		ID:          id,
		Email:       email,
		ClientIP:    "192.0.2.7",
		RequestedAt: now,
	}
}

func newProvisional(userID, hash string, now time.Time) storage.ProvisionalPassword {
	return storage.ProvisionalPassword{
		UserID:    userID,
		Hash:      hash,
		CreatedAt: now,
		ExpiresAt: now.Add(15 * time.Minute),
	}
}

func newMail(id, to string, now time.Time) storage.OutboxMail {
	return storage.OutboxMail{
		ID:            id,
		To:            to,
		Subject:       "Votre mot de passe provisoire (" + id + ")",
		TextBody:      "Bonjour,\nvoici votre mot de passe provisoire : « Ab3-xY7 ».\n",
		HTMLBody:      "<p>Bonjour,</p><p>voici votre mot de passe provisoire : « Ab3-xY7 ».</p>",
		Status:        storage.MailPending,
		NextAttemptAt: now,
		CreatedAt:     now,
	}
}

func newSigningKey(id string, now time.Time) storage.SigningKey {
	return storage.SigningKey{
		ID:                  id,
		Algorithm:           "ES256",
		PrivateKeyEncrypted: []byte("\x00\x01\xfe\xff encrypted " + id),
		PublicKeyJWK:        []byte(`{"kty":"EC","crv":"P-256","kid":"` + id + `","x":"f83O","y":"x_FE"}`),
		CreatedAt:           now,
		NotBefore:           now.Add(time.Hour),
	}
}

func newAuditEvent(typ, email string, at time.Time) storage.AuditEvent {
	return storage.AuditEvent{
		Time:      at,
		Type:      typ,
		UserID:    "user-" + email,
		Email:     email,
		ClientIP:  "2001:db8::7",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
		Detail:    "détail « " + typ + " »",
	}
}

// Helpers that store records the contract expects to exist (an engine may
// enforce foreign keys, so parents are always created first).

func addUser(t *testing.T, s storage.Store, id, email string, now time.Time) storage.User {
	t.Helper()
	u := newUser(id, email, now)
	mustOK(t, s.CreateUser(t.Context(), u), "CreateUser "+id)
	return u
}

func addClient(t *testing.T, s storage.Store, id string, now time.Time) storage.Client {
	t.Helper()
	c := newClient(id, now)
	mustOK(t, s.CreateClient(t.Context(), c), "CreateClient "+id)
	return c
}

func addSession(t *testing.T, s storage.Store, id, userID string, now time.Time) storage.Session {
	t.Helper()
	sess := newSession(id, userID, now)
	mustOK(t, s.CreateSession(t.Context(), sess), "CreateSession "+id)
	return sess
}

// addGrant stores an access token and its refresh token for grantID.
func addGrant(t *testing.T, s storage.Store, grantID, clientID, userID string, now time.Time) (storage.AccessToken, storage.RefreshToken) {
	t.Helper()
	at := newAccessToken("at-"+grantID, grantID, clientID, userID, now)
	rt := newRefreshToken("rt-"+grantID, grantID, clientID, userID, now)
	mustOK(t, s.CreateTokens(t.Context(), at, &rt), "CreateTokens "+grantID)
	return at, rt
}

// addCompletedAuthRequest stores an auth request that an agent has
// completed, as the code exchange finds it, and returns it.
func addCompletedAuthRequest(t *testing.T, s storage.Store, id, clientID, userID, sessionID string, now time.Time) storage.AuthRequest {
	t.Helper()
	ctx := t.Context()
	ar := newAuthRequest(id, clientID, now)
	mustOK(t, s.CreateAuthRequest(ctx, ar), "CreateAuthRequest "+id)
	ar.UserID, ar.SessionID, ar.AuthTime, ar.AMR, ar.Done = userID, sessionID, now, []string{"pwd"}, true
	mustOK(t, s.CompleteAuthRequest(ctx, id, userID, sessionID, now, ar.AMR), "CompleteAuthRequest "+id)
	return ar
}

// Liveness checks.

func assertSessionLive(t *testing.T, s storage.Store, id string, now time.Time) {
	t.Helper()
	if _, err := s.GetSession(t.Context(), id, now); err != nil {
		t.Errorf("session %s should be live: GetSession: %v", id, err)
	}
}

func assertSessionGone(t *testing.T, s storage.Store, id string, now time.Time) {
	t.Helper()
	_, err := s.GetSession(t.Context(), id, now)
	wantErr(t, err, storage.ErrNotFound, "GetSession "+id)
}

// assertGrantLive checks that both tokens still work. It does not disturb
// them (GetRefreshToken on a never-rotated token has no side effect).
func assertGrantLive(t *testing.T, s storage.Store, at storage.AccessToken, rt storage.RefreshToken, now time.Time) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.GetAccessToken(ctx, at.ID, now); err != nil {
		t.Errorf("access token %s should be live: %v", at.ID, err)
	}
	if _, err := s.GetRefreshToken(ctx, rt.TokenHash, now); err != nil {
		t.Errorf("refresh token %s should be live: %v", rt.ID, err)
	}
}

func assertGrantRevoked(t *testing.T, s storage.Store, at storage.AccessToken, rt storage.RefreshToken, now time.Time) {
	t.Helper()
	ctx := t.Context()
	_, err := s.GetAccessToken(ctx, at.ID, now)
	wantErr(t, err, storage.ErrNotFound, "GetAccessToken "+at.ID+" (revoked)")
	_, err = s.GetRefreshToken(ctx, rt.TokenHash, now)
	wantErr(t, err, storage.ErrNotFound, "GetRefreshToken "+rt.ID+" (revoked)")
}
