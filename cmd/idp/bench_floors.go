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
	"runtime"
	"sync"
	"syscall"
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
	hash     time.Duration // CPU time of one Argon2id verification
	hashDesc string
	// hashesPerSecond is what as many hashes at once as there are cores
	// reach, with nothing else running: Argon2id is memory-hard, and the
	// cores share the memory bus and the last-level cache, so this is below
	// cores ÷ hash.
	hashesPerSecond float64
	// loginsCeiling is what a hash and an ID-token signature, the two costs
	// every login has, reach on every core at once with nothing else
	// running: no login scenario can pass it on this machine.
	loginsCeiling float64
	// pagesPerSecond is what as many CAPTCHA pages at once as there are
	// cores reach, with nothing else running.
	pagesPerSecond float64
	sign           time.Duration // one ID-token signature
	signAlg        string
	captcha        time.Duration // one « Mot de passe oublié ? » page with its CAPTCHA drawn, no database
	captchaSz      int           // bytes of that page
}

// meanWith is the mean of the floors f and g, measured before and after a
// scenario.
func (f benchFloors) meanWith(g benchFloors) benchFloors {
	f.hash = (f.hash + g.hash) / 2
	f.hashesPerSecond = (f.hashesPerSecond + g.hashesPerSecond) / 2
	f.loginsCeiling = (f.loginsCeiling + g.loginsCeiling) / 2
	f.pagesPerSecond = (f.pagesPerSecond + g.pagesPerSecond) / 2
	f.sign = (f.sign + g.sign) / 2
	f.captcha = (f.captcha + g.captcha) / 2
	return f
}

// floorMeter measures the floors, and measures a scenario's floor again
// after it: the machine's speed drifts (one hash took 10 to 17 ms of CPU in
// runs minutes apart), and a floor measured only before five scenarios would
// misjudge the last ones.
type floorMeter struct {
	budget   time.Duration
	hashOnce func() error
	sign     func() error
	page     func() (int, error)
}

// newFloorMeter prepares the floors of configuration c, each measured over
// about budget of runs.
func newFloorMeter(ctx context.Context, c config.Config, budget time.Duration) (*floorMeter, string, error) {
	p := c.Password.Hash.Params()
	desc := fmt.Sprintf("Argon2id m=%d KiB, t=%d, p=%d", p.MemoryKiB, p.Iterations, p.Parallelism)
	hasher := passhash.NewHasher(p, runtime.NumCPU())
	phc, err := hasher.Hash(ctx, "motdepasse1")
	if err != nil {
		return nil, "", err
	}
	sign, err := idTokenSigner(c.Keys.Algorithm)
	if err != nil {
		return nil, "", err
	}
	page, err := captchaPage(c)
	if err != nil {
		return nil, "", err
	}
	return &floorMeter{
		budget: budget,
		hashOnce: func() error {
			ok, _, err := hasher.Verify(ctx, "motdepasse1", phc)
			if err == nil && !ok {
				err = fmt.Errorf("bench: the floor's own hash does not verify")
			}
			return err
		},
		sign: sign,
		page: page,
	}, desc, nil
}

// measureFloors measures every floor as the CPU time it costs this process
// (user and system, the garbage collector included), averaged over about
// budget of runs: unlike elapsed time, CPU time does not grow when other
// processes share the cores, so the floors, and the bounds derived from
// them, hold on a busy machine too.
func measureFloors(ctx context.Context, c config.Config, budget time.Duration) (benchFloors, *floorMeter, error) {
	m, desc, err := newFloorMeter(ctx, c, budget)
	if err != nil {
		return benchFloors{}, nil, err
	}
	f := benchFloors{hashDesc: desc, signAlg: c.Keys.Algorithm}
	for _, kind := range []string{"login", "sso", "forgot"} {
		if err := m.measure(kind, &f); err != nil {
			return f, nil, err
		}
	}
	return f, m, nil
}

// measure measures the floor of scenario name into f: for login the hash,
// what as many hashes at once as cores reach, and what a hash and a
// signature on every core reach; the signature for sso and refresh; for
// forgot the CAPTCHA page and what as many at once as cores reach.
func (m *floorMeter) measure(name string, f *benchFloors) error {
	var err error
	switch name {
	case "login":
		if f.hash, err = cpuPerRun(m.budget, m.hashOnce); err != nil {
			return err
		}
		if f.hashesPerSecond, err = parallelRate(m.budget, runtime.NumCPU(), m.hashOnce); err != nil {
			return err
		}
		f.loginsCeiling, err = parallelRate(m.budget, runtime.NumCPU(), func() error {
			if err := m.hashOnce(); err != nil {
				return err
			}
			return m.sign()
		})
	case "sso", "refresh":
		f.sign, err = cpuPerRun(m.budget, m.sign)
	case "forgot":
		if f.captcha, err = cpuPerRun(m.budget, func() error {
			n, err := m.page()
			f.captchaSz = n
			return err
		}); err != nil {
			return err
		}
		f.pagesPerSecond, err = parallelRate(m.budget, runtime.NumCPU(), func() error {
			_, err := m.page()
			return err
		})
	}
	return err
}

// cpuPerRun runs fn once to warm up, then for about budget (at least 10
// runs), and returns the process's CPU time per run.
func cpuPerRun(budget time.Duration, fn func() error) (time.Duration, error) {
	if err := fn(); err != nil {
		return 0, err
	}
	cpu0, err := selfCPU()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	n := 0
	for n < 10 || time.Since(start) < budget {
		if err := fn(); err != nil {
			return 0, err
		}
		n++
	}
	cpu1, err := selfCPU()
	if err != nil {
		return 0, err
	}
	return (cpu1 - cpu0) / time.Duration(n), nil
}

// parallelRate runs fn in n goroutines for about budget and returns the
// runs completed per second.
func parallelRate(budget time.Duration, n int, fn func() error) (float64, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		runs  int
		first error
	)
	start := time.Now()
	for range n {
		wg.Go(func() {
			for time.Since(start) < budget {
				err := fn()
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				runs++
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(runs) / time.Since(start).Seconds(), first
}

// selfCPU is the CPU time this process has used (user and system).
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("bench: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
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

func (floorChallenges) CreateCountedChallenge(context.Context, string, time.Duration, int64, storage.Challenge, time.Time) (int64, error) {
	return 1, nil
}

func (floorChallenges) ConsumeChallenge(context.Context, string, time.Time) (storage.Challenge, error) {
	return storage.Challenge{}, storage.ErrNotFound
}

func (floorChallenges) AddDecayingFailure(_ context.Context, key string, _ time.Duration, now time.Time) (storage.Throttle, error) {
	return storage.Throttle{Key: key, Failures: 1, LastFailureAt: now}, nil
}

func (floorChallenges) HitCounter(context.Context, string, time.Duration, time.Time) (int64, error) {
	return 1, nil
}

func (floorChallenges) TakeChallenge(_ context.Context, _, key string, _ time.Time) (*storage.Challenge, storage.Throttle, error) {
	return nil, storage.Throttle{Key: key}, nil
}

func (floorChallenges) ChallengeReceipt(context.Context, string, time.Time) (bool, error) {
	return false, nil
}

// ceilingNotes says, for login and forgot, what their unavoidable work alone
// reaches on every core at once, against the bound (cores ÷ one floor) and
// against the scenario's own rate: the cores share the memory bus and the
// last-level cache, so even work that never waits is below the bound, and the
// gap between the two is what the rest of the scenario costs.
func ceilingNotes(name string, f benchFloors, cores int, bound, perSecond float64) []string {
	if bound <= 0 {
		return nil
	}
	share := func(rate float64) string {
		return fmt.Sprintf("%.1f/s here (%.0f%% of the bound)", rate, 100*rate/bound)
	}
	var notes []string
	switch name {
	case "login":
		if f.hashesPerSecond > 0 {
			notes = append(notes, fmt.Sprintf("login: %d hashes at once alone reach %s: the logins reached %.0f%% of that",
				cores, share(f.hashesPerSecond), 100*perSecond/f.hashesPerSecond))
		}
		if f.loginsCeiling > 0 {
			notes = append(notes, fmt.Sprintf("login: a hash and a signature on each core, nothing else, reach %s: "+
				"the most logins can reach here; they reached %.0f%% of that", share(f.loginsCeiling), 100*perSecond/f.loginsCeiling))
		}
	case "forgot":
		if f.pagesPerSecond > 0 {
			notes = append(notes, fmt.Sprintf("forgot: %d CAPTCHA pages at once alone reach %s: the scenario reached %.0f%% of that",
				cores, share(f.pagesPerSecond), 100*perSecond/f.pagesPerSecond))
		}
	}
	return notes
}
