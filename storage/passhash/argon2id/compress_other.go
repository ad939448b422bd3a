//go:build !amd64 || purego

package argon2id

func compress(out, x, y *block, xorOut bool) { compressGeneric(out, x, y, xorOut) }
