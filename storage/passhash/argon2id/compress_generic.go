package argon2id

import "math/bits"

// compressGeneric is the compression function G of RFC 9106 §3.5 in plain
// Go: R = x ⊕ y, the permutation P applied to R's eight rows and then to its
// eight columns of 16-byte registers, and out = P(R) ⊕ R (⊕ out when
// xorOut, in the passes after the first).
func compressGeneric(out, x, y *block, xorOut bool) {
	var r, q block
	for i := range r {
		r[i] = x[i] ^ y[i]
	}
	q = r
	for row := 0; row < 8; row++ {
		// Row row is words 16·row … 16·row+15.
		permute((*[16]uint64)(q[row*16 : row*16+16]))
	}
	for col := 0; col < 8; col++ {
		// Column col is the register col of each row: words 2·col and
		// 2·col+1 of rows 0 … 7.
		c := (*[114]uint64)(q[2*col : 2*col+114])
		v := [16]uint64{c[0], c[1], c[16], c[17], c[32], c[33], c[48], c[49],
			c[64], c[65], c[80], c[81], c[96], c[97], c[112], c[113]}
		permute(&v)
		c[0], c[1], c[16], c[17], c[32], c[33], c[48], c[49] = v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		c[64], c[65], c[80], c[81], c[96], c[97], c[112], c[113] = v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]
	}
	if xorOut {
		for i := range out {
			out[i] ^= q[i] ^ r[i]
		}
	} else {
		for i := range out {
			out[i] = q[i] ^ r[i]
		}
	}
}

// permute is P of RFC 9106 §3.6 on the sixteen words v0 … v15 of v: GB on
// the four columns (v0, v4, v8, v12) … then on the four diagonals (v0, v5,
// v10, v15) …, GB being BLAKE2b's G with each addition a + b replaced by
// a + b + 2·lo(a)·lo(b), lo being the low 32 bits. Written out in full: the
// compiler does not inline a function of GB's size, and calls would cost
// more than the arithmetic.
func permute(v *[16]uint64) {
	v0, v1, v2, v3 := v[0], v[1], v[2], v[3]
	v4, v5, v6, v7 := v[4], v[5], v[6], v[7]
	v8, v9, v10, v11 := v[8], v[9], v[10], v[11]
	v12, v13, v14, v15 := v[12], v[13], v[14], v[15]
	// GB(v0, v4, v8, v12)
	v0 += v4 + 2*(v0&0xFFFFFFFF)*(v4&0xFFFFFFFF)
	v12 = bits.RotateLeft64(v12^v0, -32)
	v8 += v12 + 2*(v8&0xFFFFFFFF)*(v12&0xFFFFFFFF)
	v4 = bits.RotateLeft64(v4^v8, -24)
	v0 += v4 + 2*(v0&0xFFFFFFFF)*(v4&0xFFFFFFFF)
	v12 = bits.RotateLeft64(v12^v0, -16)
	v8 += v12 + 2*(v8&0xFFFFFFFF)*(v12&0xFFFFFFFF)
	v4 = bits.RotateLeft64(v4^v8, -63)
	// GB(v1, v5, v9, v13)
	v1 += v5 + 2*(v1&0xFFFFFFFF)*(v5&0xFFFFFFFF)
	v13 = bits.RotateLeft64(v13^v1, -32)
	v9 += v13 + 2*(v9&0xFFFFFFFF)*(v13&0xFFFFFFFF)
	v5 = bits.RotateLeft64(v5^v9, -24)
	v1 += v5 + 2*(v1&0xFFFFFFFF)*(v5&0xFFFFFFFF)
	v13 = bits.RotateLeft64(v13^v1, -16)
	v9 += v13 + 2*(v9&0xFFFFFFFF)*(v13&0xFFFFFFFF)
	v5 = bits.RotateLeft64(v5^v9, -63)
	// GB(v2, v6, v10, v14)
	v2 += v6 + 2*(v2&0xFFFFFFFF)*(v6&0xFFFFFFFF)
	v14 = bits.RotateLeft64(v14^v2, -32)
	v10 += v14 + 2*(v10&0xFFFFFFFF)*(v14&0xFFFFFFFF)
	v6 = bits.RotateLeft64(v6^v10, -24)
	v2 += v6 + 2*(v2&0xFFFFFFFF)*(v6&0xFFFFFFFF)
	v14 = bits.RotateLeft64(v14^v2, -16)
	v10 += v14 + 2*(v10&0xFFFFFFFF)*(v14&0xFFFFFFFF)
	v6 = bits.RotateLeft64(v6^v10, -63)
	// GB(v3, v7, v11, v15)
	v3 += v7 + 2*(v3&0xFFFFFFFF)*(v7&0xFFFFFFFF)
	v15 = bits.RotateLeft64(v15^v3, -32)
	v11 += v15 + 2*(v11&0xFFFFFFFF)*(v15&0xFFFFFFFF)
	v7 = bits.RotateLeft64(v7^v11, -24)
	v3 += v7 + 2*(v3&0xFFFFFFFF)*(v7&0xFFFFFFFF)
	v15 = bits.RotateLeft64(v15^v3, -16)
	v11 += v15 + 2*(v11&0xFFFFFFFF)*(v15&0xFFFFFFFF)
	v7 = bits.RotateLeft64(v7^v11, -63)
	// GB(v0, v5, v10, v15)
	v0 += v5 + 2*(v0&0xFFFFFFFF)*(v5&0xFFFFFFFF)
	v15 = bits.RotateLeft64(v15^v0, -32)
	v10 += v15 + 2*(v10&0xFFFFFFFF)*(v15&0xFFFFFFFF)
	v5 = bits.RotateLeft64(v5^v10, -24)
	v0 += v5 + 2*(v0&0xFFFFFFFF)*(v5&0xFFFFFFFF)
	v15 = bits.RotateLeft64(v15^v0, -16)
	v10 += v15 + 2*(v10&0xFFFFFFFF)*(v15&0xFFFFFFFF)
	v5 = bits.RotateLeft64(v5^v10, -63)
	// GB(v1, v6, v11, v12)
	v1 += v6 + 2*(v1&0xFFFFFFFF)*(v6&0xFFFFFFFF)
	v12 = bits.RotateLeft64(v12^v1, -32)
	v11 += v12 + 2*(v11&0xFFFFFFFF)*(v12&0xFFFFFFFF)
	v6 = bits.RotateLeft64(v6^v11, -24)
	v1 += v6 + 2*(v1&0xFFFFFFFF)*(v6&0xFFFFFFFF)
	v12 = bits.RotateLeft64(v12^v1, -16)
	v11 += v12 + 2*(v11&0xFFFFFFFF)*(v12&0xFFFFFFFF)
	v6 = bits.RotateLeft64(v6^v11, -63)
	// GB(v2, v7, v8, v13)
	v2 += v7 + 2*(v2&0xFFFFFFFF)*(v7&0xFFFFFFFF)
	v13 = bits.RotateLeft64(v13^v2, -32)
	v8 += v13 + 2*(v8&0xFFFFFFFF)*(v13&0xFFFFFFFF)
	v7 = bits.RotateLeft64(v7^v8, -24)
	v2 += v7 + 2*(v2&0xFFFFFFFF)*(v7&0xFFFFFFFF)
	v13 = bits.RotateLeft64(v13^v2, -16)
	v8 += v13 + 2*(v8&0xFFFFFFFF)*(v13&0xFFFFFFFF)
	v7 = bits.RotateLeft64(v7^v8, -63)
	// GB(v3, v4, v9, v14)
	v3 += v4 + 2*(v3&0xFFFFFFFF)*(v4&0xFFFFFFFF)
	v14 = bits.RotateLeft64(v14^v3, -32)
	v9 += v14 + 2*(v9&0xFFFFFFFF)*(v14&0xFFFFFFFF)
	v4 = bits.RotateLeft64(v4^v9, -24)
	v3 += v4 + 2*(v3&0xFFFFFFFF)*(v4&0xFFFFFFFF)
	v14 = bits.RotateLeft64(v14^v3, -16)
	v9 += v14 + 2*(v9&0xFFFFFFFF)*(v14&0xFFFFFFFF)
	v4 = bits.RotateLeft64(v4^v9, -63)
	v[0], v[1], v[2], v[3] = v0, v1, v2, v3
	v[4], v[5], v[6], v[7] = v4, v5, v6, v7
	v[8], v[9], v[10], v[11] = v8, v9, v10, v11
	v[12], v[13], v[14], v[15] = v12, v13, v14, v15
}
