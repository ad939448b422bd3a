package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/gorilla/mux"

	"github.com/caf-extranet/idp/config"
	loginui "github.com/caf-extranet/idp/login-ui"
	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/passhash"
)

// benchFloors are the costs no implementation of a scenario can avoid, each
// measured on one core of this machine with the configured parameters: the
// throughput bound of a scenario is cores ÷ its floor.
type benchFloors struct {
	hash      time.Duration // one Argon2id verification
	hashDesc  string
	sign      time.Duration // one ID-token signature
	signAlg   string
	captcha   time.Duration // one « Mot de passe oublié ? » page with its CAPTCHA drawn, no database
	captchaSz int           // bytes of that page
}

// measureFloors times each floor for about budget (at least a few runs) and
// keeps the fastest decile: what one core of this machine does when nothing
// else runs on it. A neighbour's burst of CPU only ever slows a run down, so
// the fast runs are the stable measure of the cost (and the bounds derived
// from them are never flattered by a busy machine).
func measureFloors(ctx context.Context, c config.Config, budget time.Duration) (benchFloors, error) {
	var f benchFloors
	p := c.Password.Hash.Params()
	f.hashDesc = fmt.Sprintf("Argon2id m=%d KiB, t=%d, p=%d", p.MemoryKiB, p.Iterations, p.Parallelism)
	hasher := passhash.NewHasher(p, 1)
	phc, err := hasher.Hash(ctx, "motdepasse1")
	if err != nil {
		return f, err
	}
	f.hash, err = fastDecile(budget, func() error {
		ok, _, err := hasher.Verify(ctx, "motdepasse1", phc)
		if err == nil && !ok {
			err = fmt.Errorf("bench: the floor's own hash does not verify")
		}
		return err
	})
	if err != nil {
		return f, err
	}

	f.signAlg = c.Keys.Algorithm
	sign, err := idTokenSigner(c.Keys.Algorithm)
	if err != nil {
		return f, err
	}
	if f.sign, err = fastDecile(budget, sign); err != nil {
		return f, err
	}

	page, err := captchaPage(c)
	if err != nil {
		return f, err
	}
	f.captcha, err = fastDecile(budget, func() error {
		n, err := page()
		f.captchaSz = n
		return err
	})
	return f, err
}

// fastDecile runs fn once to warm up, then for about budget (at least 10
// runs), and returns the 10th percentile of the durations.
func fastDecile(budget time.Duration, fn func() error) (time.Duration, error) {
	if err := fn(); err != nil {
		return 0, err
	}
	var runs []time.Duration
	start := time.Now()
	for len(runs) < 10 || time.Since(start) < budget {
		t0 := time.Now()
		if err := fn(); err != nil {
			return 0, err
		}
		runs = append(runs, time.Since(t0))
	}
	slices.Sort(runs)
	return runs[len(runs)/10], nil
}

// idTokenSigner signs an ID token of the provider's usual size with a fresh
// key of alg, through go-jose as the OIDC library does.
func idTokenSigner(alg string) (func() error, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", storage.NewID()))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	claims, err := json.Marshal(map[string]any{
		"iss": "https://connexion.example.fr", "sub": storage.NewID(), "aud": []string{"portail-rh"},
		"exp": now.Add(15 * time.Minute).Unix(), "iat": now.Unix(), "auth_time": now.Unix(),
		"nonce": randomToken(), "amr": []string{"pwd"}, "azp": "portail-rh", "at_hash": "t7UO5AqRzmG1wbODrt5GVQ",
		"email": "claire.dupont@mairie-lyon.fr", "email_verified": true, "name": "Claire Dupont",
		"organisation": "Mairie de Lyon",
	})
	if err != nil {
		return nil, err
	}
	return func() error {
		obj, err := signer.Sign(claims)
		if err != nil {
			return err
		}
		_, err = obj.CompactSerialize()
		return err
	}, nil
}

// captchaPage serves GET /login/forgot with the real login pages, whose
// store answers from memory: the page's cost without the database.
func captchaPage(c config.Config) (func() (int, error), error) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	ui, err := loginui.New(loginui.Deps{
		Accounts: floorAccounts{}, AuthRequests: floorRequests{}, Challenges: floorChallenges{},
		Config: loginui.Config{CaptchaLength: c.Captcha.Length, CaptchaTTL: c.Captcha.TTL,
			CaptchaTestAnswer: c.Captcha.TestAnswer, PortalName: portalName},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ChallengeKey: key,
	})
	if err != nil {
		return nil, err
	}
	r := mux.NewRouter()
	ui.Routes(r)
	return func() (int, error) {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/login/forgot", nil))
		if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte("data:image/png")) {
			return 0, fmt.Errorf("bench: the CAPTCHA floor's page answered %d without an image", rec.Code)
		}
		return rec.Body.Len(), nil
	}, nil
}

// The login pages' collaborators for the CAPTCHA floor: only the challenge
// store is called by the forgot page, and it keeps nothing.
type (
	floorAccounts   struct{ loginui.Accounts }
	floorRequests   struct{ loginui.AuthRequests }
	floorChallenges struct{}
)

func (floorChallenges) CreateChallenge(context.Context, storage.Challenge) error { return nil }

func (floorChallenges) ConsumeChallenge(context.Context, string, time.Time) (storage.Challenge, error) {
	return storage.Challenge{}, storage.ErrNotFound
}

func (floorChallenges) HitCounter(context.Context, string, time.Duration, time.Time) (int64, error) {
	return 1, nil
}
