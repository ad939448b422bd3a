package provider

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/caf-extranet/idp/storage"
)

// keyCacheTTL bounds how long an instance trusts its cached key set when no
// change reaches it: a rotation or a pruning made anywhere is seen within a
// second (changeWatcher), and this is the safety net behind it (see
// clientCacheTTL).
const keyCacheTTL = 5 * time.Minute

// keyManager owns the signing keys: generated once for all instances, kept
// in the database with the private part encrypted (AES-256-GCM under the
// key-encryption key), cached per instance, rotated by compare-and-swap.
type keyManager struct {
	store        storage.Store
	kek          cipher.AEAD
	alg          string
	rotation     time.Duration // 0: no automatic rotation
	publishAhead time.Duration
	// retireAfter: how long a key stays published after a newer one took
	// over, so that every token it signed can still be verified.
	retireAfter time.Duration
	now         func() time.Time
	log         *slog.Logger
	// readTimeout bounds a read of the keys made for a request (0:
	// keyReadTimeout; tests shorten it).
	readTimeout time.Duration

	mu       sync.Mutex
	loaded   time.Time   // zero: read the table again at the next use
	keys     []loadedKey // oldest first
	pubCache []op.Key
	// epoch counts invalidations: a reload that began before one may have
	// read the keys as they were before the change, so it does not count
	// as fresh.
	epoch uint64
	// failing: the last reload failed and the keys held are used; logged
	// once per streak of failures, not per request.
	failing bool
}

type loadedKey struct {
	rec     storage.SigningKey
	private crypto.Signer
}

type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.PublicKey
}

func (k *publicKey) ID() string                         { return k.id }
func (k *publicKey) Algorithm() jose.SignatureAlgorithm { return k.alg }
func (k *publicKey) Use() string                        { return "sig" }
func (k *publicKey) Key() any                           { return k.key }

func newKeyManager(store storage.Store, kek [32]byte, alg string, rotation, publishAhead, retireAfter time.Duration, now func() time.Time, log *slog.Logger) (*keyManager, error) {
	block, err := aes.NewCipher(kek[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if alg != "RS256" && alg != "ES256" {
		return nil, fmt.Errorf("provider: unsupported signing algorithm %q", alg)
	}
	return &keyManager{store: store, kek: aead, alg: alg, rotation: rotation, publishAhead: publishAhead,
		retireAfter: retireAfter, now: now, log: log}, nil
}

// ensure makes sure at least one key exists (first start), then loads them.
func (m *keyManager) ensure(ctx context.Context) error {
	keys, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		now := m.now()
		err := m.add(ctx, "", now, now)
		if err != nil && !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
	return m.reload(ctx)
}

// Rotate publishes a new key that signs from now+publishAhead, unless
// another instance rotated first. force skips the age check.
func (m *keyManager) Rotate(ctx context.Context, force bool) (rotated bool, err error) {
	keys, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return false, err
	}
	now := m.now()
	newestID := ""
	if len(keys) > 0 {
		newest := keys[len(keys)-1]
		newestID = newest.ID
		due := m.rotation > 0 && now.Sub(newest.CreatedAt) >= m.rotation
		if !force && !due {
			return false, m.pruneRetired(ctx, keys, now)
		}
	}
	err = m.add(ctx, newestID, now, now.Add(m.publishAhead))
	if errors.Is(err, storage.ErrConflict) {
		return false, nil // another instance rotated first
	}
	if err != nil {
		return false, err
	}
	m.log.InfoContext(ctx, "signing key rotated", "signs_from", now.Add(m.publishAhead))
	return true, m.reload(ctx)
}

// pruneRetired deletes keys whose successor has been signing for longer than
// any token they signed can live.
func (m *keyManager) pruneRetired(ctx context.Context, keys []storage.SigningKey, now time.Time) error {
	for i := 0; i+1 < len(keys); i++ {
		next := keys[i+1]
		if !next.NotBefore.After(now) && now.Sub(next.NotBefore) > m.retireAfter {
			if err := m.store.DeleteSigningKey(ctx, keys[i].ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

func (m *keyManager) add(ctx context.Context, expectNewest string, now, notBefore time.Time) error {
	priv, err := generateKey(m.alg)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	id := storage.NewID()
	pub, err := jose.JSONWebKey{Key: priv.Public(), KeyID: id, Algorithm: m.alg, Use: "sig"}.MarshalJSON()
	if err != nil {
		return err
	}
	nonce := make([]byte, m.kek.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	// The key id is authenticated data: an encrypted private key cannot be
	// swapped onto another row.
	sealed := m.kek.Seal(nonce, nonce, der, []byte(id))
	return m.store.AddSigningKey(ctx, storage.SigningKey{
		ID: id, Algorithm: m.alg, PrivateKeyEncrypted: sealed, PublicKeyJWK: pub,
		CreatedAt: now, NotBefore: notBefore,
	}, expectNewest)
}

func generateKey(alg string) (crypto.Signer, error) {
	if alg == "ES256" {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return rsa.GenerateKey(rand.Reader, 2048)
}

func (m *keyManager) reload(ctx context.Context) error {
	m.mu.Lock()
	epoch := m.epoch
	m.mu.Unlock()
	recs, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	loaded := make([]loadedKey, 0, len(recs))
	pubs := make([]op.Key, 0, len(recs))
	for _, r := range recs {
		ns := m.kek.NonceSize()
		if len(r.PrivateKeyEncrypted) < ns {
			return fmt.Errorf("provider: signing key %s: ciphertext too short", r.ID)
		}
		der, err := m.kek.Open(nil, r.PrivateKeyEncrypted[:ns], r.PrivateKeyEncrypted[ns:], []byte(r.ID))
		if err != nil {
			return fmt.Errorf("provider: signing key %s cannot be decrypted (wrong key-encryption key?): %w", r.ID, err)
		}
		pk, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("provider: signing key %s: %w", r.ID, err)
		}
		signer, ok := pk.(crypto.Signer)
		if !ok {
			return fmt.Errorf("provider: signing key %s is not a signer", r.ID)
		}
		loaded = append(loaded, loadedKey{rec: r, private: signer})
		pubs = append(pubs, &publicKey{id: r.ID, alg: jose.SignatureAlgorithm(r.Algorithm), key: signer.Public()})
	}
	m.mu.Lock()
	switch {
	case m.epoch == epoch:
		m.keys, m.pubCache, m.loaded = loaded, pubs, m.now()
	case len(m.keys) == 0:
		// Read across an invalidation, but there is nothing else to sign
		// with: used, and read again at the next use (loaded stays zero).
		m.keys, m.pubCache = loaded, pubs
	}
	// Otherwise a reload that began after the invalidation has installed,
	// or will install, what the table holds now: this older read must not
	// overwrite it.
	m.mu.Unlock()
	return nil
}

// invalidate makes the next use read the keys again.
func (m *keyManager) invalidate() {
	m.mu.Lock()
	m.loaded = time.Time{}
	m.epoch++
	m.mu.Unlock()
}

// current returns the cached keys, reading the table again when the cache is
// older than keyCacheTTL.
func (m *keyManager) current(ctx context.Context) ([]loadedKey, []op.Key, error) {
	m.mu.Lock()
	stale := m.staleLocked()
	m.mu.Unlock()
	var err error
	if stale {
		// On a context of its own: the request that came when the keys fell
		// due may leave, and the reload tells of the database, not of it
		// (a database that hangs would otherwise only ever end with the
		// requests' own cancellations, and never be reported).
		timeout := m.readTimeout
		if timeout <= 0 {
			timeout = keyReadTimeout
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		err = m.reload(rctx)
		cancel()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case !stale:
	case err == nil:
		if m.failing {
			m.failing = false
			m.log.InfoContext(ctx, "signing keys read again")
		}
	case len(m.keys) == 0:
		return nil, nil, err // nothing held: the error is the answer
	case !m.failing:
		// The keys cannot be read again (a database fault): those held are
		// the newest this instance knows, and serve until they are. Told
		// once per streak of failures.
		m.failing = true
		m.log.WarnContext(ctx, "signing keys not read again: using the keys held until they are", "err", err)
	}
	return m.keys, m.pubCache, nil
}

// keyReadTimeout bounds one read of the keys made for a request.
const keyReadTimeout = 5 * time.Second

// staleLocked: the cached keys are to be read again before use. m.mu is
// held.
func (m *keyManager) staleLocked() bool {
	return m.loaded.IsZero() || m.now().Sub(m.loaded) > keyCacheTTL || len(m.keys) == 0
}

// freshFrom: the cached keys are read, not due, and still the set whose
// public keys begin at first (reload always makes a new slice).
func (m *keyManager) freshFrom(first *op.Key) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.staleLocked() && len(m.pubCache) > 0 && &m.pubCache[0] == first
}

// signingKey is the newest key whose NotBefore has passed.
func (m *keyManager) signingKey(ctx context.Context) (op.SigningKey, error) {
	keys, _, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	now := m.now()
	for i := len(keys) - 1; i >= 0; i-- {
		if !keys[i].rec.NotBefore.After(now) {
			return &signingKey{id: keys[i].rec.ID, alg: jose.SignatureAlgorithm(keys[i].rec.Algorithm), key: keys[i].private}, nil
		}
	}
	return nil, errors.New("provider: no signing key is valid yet")
}

// algorithms are those of the published keys, oldest first, then the
// configured one if no key has it yet. keys.algorithm applies to new keys
// only: after it changes, the existing key goes on signing until the next
// rotation, and a client that takes the algorithms it accepts from
// discovery (go-oidc) must still accept that key's; the configured one is
// listed before its first key, so that a client that read discovery before
// the rotation accepts the tokens after it. Derived from the keys in the
// database, the list is the same on every instance once their caches
// follow a rotation (an instance still configured with the old algorithm
// included), and an algorithm leaves it with its last key. When the keys
// cannot be read again, the list is that of the keys this instance holds,
// which it still signs with: the list is REQUIRED (OIDC Discovery §3), and a
// client that starts while it is missing (go-oidc) assumes RS256 and
// rejects every ES256 ID token until it restarts.
func (m *keyManager) algorithms(ctx context.Context) []jose.SignatureAlgorithm {
	// Through a database fault current answers the keys held; it fails
	// only when none is, and the configured algorithm alone is listed.
	keys, _, _ := m.current(ctx)
	var algs []jose.SignatureAlgorithm
	for _, k := range keys {
		if alg := jose.SignatureAlgorithm(k.rec.Algorithm); !slices.Contains(algs, alg) {
			algs = append(algs, alg)
		}
	}
	if alg := jose.SignatureAlgorithm(m.alg); !slices.Contains(algs, alg) {
		algs = append(algs, alg)
	}
	return algs
}

func (m *keyManager) publicKeys(ctx context.Context) ([]op.Key, error) {
	_, pubs, err := m.current(ctx)
	return pubs, err
}

// run rotates when due and prunes retired keys, every interval, until ctx is
// done. Every instance runs it; the compare-and-swap keeps one rotation.
func (m *keyManager) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := m.Rotate(ctx, false); err != nil && ctx.Err() == nil {
				m.log.ErrorContext(ctx, "key rotation", "err", err)
			}
		}
	}
}
