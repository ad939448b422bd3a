package passhash

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Bounds on parameters read from a stored hash. Stored hashes come from our
// own database, but a corrupted or planted row must not make a single login
// allocate gigabytes or spin for minutes.
const (
	maxMemoryKiB  = 4 * 1024 * 1024 // 4 GiB
	maxIterations = 100
	minByteLen    = 8
	maxByteLen    = 1024
	// maxPHCLen is comfortably above the longest valid string (two
	// 1024-byte fields in base64 plus the header).
	maxPHCLen = 3000
)

// b64 is PHC's base64: standard alphabet, no padding, and strict so that a
// string has exactly one accepted spelling.
var b64 = base64.RawStdEncoding.Strict()

const argon2Version = 19 // 0x13, the only version x/crypto/argon2 computes

// ParsePHC parses an Argon2id PHC string. The returned Params carry the salt
// and key lengths found. Anything else, including parameters out of bounds,
// gets an error wrapping ErrMalformed.
func ParsePHC(s string) (Params, []byte, []byte, error) {
	fail := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformed, why)
	}
	if len(s) > maxPHCLen {
		return fail("too long")
	}
	// encoding/base64 skips CR and LF inside its input: a hash with a line
	// break would parse, yet not be the string that was stored.
	if strings.ContainsAny(s, "\r\n") {
		return fail("contains a line break")
	}
	fields := strings.Split(s, "$")
	if len(fields) != 6 || fields[0] != "" {
		return fail("expected $argon2id$v=19$m=…,t=…,p=…$salt$hash")
	}
	if fields[1] != "argon2id" {
		return fail("algorithm is not argon2id")
	}
	if fields[2] != "v="+strconv.Itoa(argon2Version) {
		return fail("version is not v=19")
	}
	var p Params
	params := strings.Split(fields[3], ",")
	if len(params) != 3 {
		return fail("expected parameters m, t, p")
	}
	for i, name := range []string{"m", "t", "p"} {
		value, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return fail("expected parameters m, t, p in that order")
		}
		n, ok := parseDecimal(value)
		if !ok {
			return fail("parameter " + name + " is not a decimal number")
		}
		switch name {
		case "m":
			if n > maxMemoryKiB {
				return fail("memory out of bounds")
			}
			p.MemoryKiB = uint32(n)
		case "t":
			if n < 1 || n > maxIterations {
				return fail("iterations out of bounds")
			}
			p.Iterations = uint32(n)
		case "p":
			if n < 1 || n > 255 {
				return fail("parallelism out of bounds")
			}
			p.Parallelism = uint8(n)
		}
	}
	// RFC 9106: at least 8 KiB per lane.
	if p.MemoryKiB < 8*uint32(p.Parallelism) {
		return fail("memory below 8 KiB per lane")
	}
	salt, err := b64.DecodeString(fields[4])
	if err != nil {
		return fail("salt is not unpadded base64")
	}
	key, err := b64.DecodeString(fields[5])
	if err != nil {
		return fail("hash is not unpadded base64")
	}
	if len(salt) < minByteLen || len(salt) > maxByteLen {
		return fail("salt length out of bounds")
	}
	if len(key) < minByteLen || len(key) > maxByteLen {
		return fail("hash length out of bounds")
	}
	p.SaltLen = uint32(len(salt))
	p.KeyLen = uint32(len(key))
	return p, salt, key, nil
}

// parseDecimal accepts PHC's decimal form: digits only, no sign, no leading
// zero, at most 10 digits (so that it fits in a uint64 without checks).
func parseDecimal(s string) (uint64, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var n uint64
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2Version, p.MemoryKiB, p.Iterations, p.Parallelism,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}
