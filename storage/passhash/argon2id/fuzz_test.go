package argon2id

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/argon2"
)

// FuzzSameAsXCrypto: for any password, salt and small parameters, the tag is
// x/crypto's, whether the Memory is fresh or was used by a derivation of
// other parameters just before.
func FuzzSameAsXCrypto(f *testing.F) {
	f.Add([]byte("motdepasse1"), []byte("sel de seize oct"), uint8(2), uint16(64), uint8(1), uint8(32))
	f.Add([]byte{}, []byte("saltsalt"), uint8(1), uint16(8), uint8(1), uint8(4))
	f.Add([]byte("é"), []byte("0123456789abcdef0123"), uint8(3), uint16(300), uint8(4), uint8(100))
	var reused Memory
	f.Fuzz(func(t *testing.T, password, salt []byte, time uint8, memory uint16, lanes uint8, keyLen uint8) {
		// Bounded so that one input costs well under a millisecond.
		t3 := 1 + uint32(time)%3
		p := 1 + lanes%4
		m := 8*uint32(p) + uint32(memory)%512
		k := 4 + uint32(keyLen)%125
		want := argon2.IDKey(password, salt, t3, m, p, k)
		var fresh Memory
		if got := fresh.Key(password, salt, t3, m, p, k); !bytes.Equal(got, want) {
			t.Fatalf("t=%d m=%d p=%d len=%d: fresh memory gives %x, x/crypto %x", t3, m, p, k, got, want)
		}
		if got := reused.Key(password, salt, t3, m, p, k); !bytes.Equal(got, want) {
			t.Fatalf("t=%d m=%d p=%d len=%d: reused memory gives %x, x/crypto %x", t3, m, p, k, got, want)
		}
	})
}
