//go:build !purego

package argon2id

import "golang.org/x/sys/cpu"

// hasAVX2 chooses compressAVX2, four words per instruction; the plain Go
// version takes about twice as long as x/crypto's SSE code, which would make
// every login slower.
var hasAVX2 = cpu.X86.HasAVX2

// compressAVX2 is compressGeneric in AVX2 (compress_amd64.s).
//
//go:noescape
func compressAVX2(out, x, y *block, xorOut bool)

func compress(out, x, y *block, xorOut bool) {
	if hasAVX2 {
		compressAVX2(out, x, y, xorOut)
		return
	}
	compressGeneric(out, x, y, xorOut)
}
