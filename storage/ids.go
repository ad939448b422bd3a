package storage

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// NewID returns a random 128-bit identifier, hex-encoded, for records whose
// id is not itself a secret (users, auth requests, tokens' ids...).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// NewSecret returns a random 256-bit bearer secret (session cookie, refresh
// token...), base64url without padding. Only its HashSecret is stored.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashSecret is how bearer secrets are stored and looked up: a database leak
// does not hand out live sessions, codes or refresh tokens. A fast hash is
// right here: the secrets have 256 bits of entropy.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
