package argon2id

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
		b := row * 16
		permute(&q, b, b+1, b+2, b+3, b+4, b+5, b+6, b+7, b+8, b+9, b+10, b+11, b+12, b+13, b+14, b+15)
	}
	for col := 0; col < 8; col++ {
		// Column col is the register col of each row: words 2·col and
		// 2·col+1 of rows 0 … 7.
		b := col * 2
		permute(&q, b, b+1, b+16, b+17, b+32, b+33, b+48, b+49, b+64, b+65, b+80, b+81, b+96, b+97, b+112, b+113)
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

// permute is P of RFC 9106 §3.6 on the sixteen words v0 … v15 of q at the
// given indexes.
func permute(q *block, i0, i1, i2, i3, i4, i5, i6, i7, i8, i9, i10, i11, i12, i13, i14, i15 int) {
	v0, v1, v2, v3 := q[i0], q[i1], q[i2], q[i3]
	v4, v5, v6, v7 := q[i4], q[i5], q[i6], q[i7]
	v8, v9, v10, v11 := q[i8], q[i9], q[i10], q[i11]
	v12, v13, v14, v15 := q[i12], q[i13], q[i14], q[i15]
	v0, v4, v8, v12 = mix(v0, v4, v8, v12)
	v1, v5, v9, v13 = mix(v1, v5, v9, v13)
	v2, v6, v10, v14 = mix(v2, v6, v10, v14)
	v3, v7, v11, v15 = mix(v3, v7, v11, v15)
	v0, v5, v10, v15 = mix(v0, v5, v10, v15)
	v1, v6, v11, v12 = mix(v1, v6, v11, v12)
	v2, v7, v8, v13 = mix(v2, v7, v8, v13)
	v3, v4, v9, v14 = mix(v3, v4, v9, v14)
	q[i0], q[i1], q[i2], q[i3] = v0, v1, v2, v3
	q[i4], q[i5], q[i6], q[i7] = v4, v5, v6, v7
	q[i8], q[i9], q[i10], q[i11] = v8, v9, v10, v11
	q[i12], q[i13], q[i14], q[i15] = v12, v13, v14, v15
}

// mix is GB of RFC 9106 §3.6: BLAKE2b's G with each addition a + b replaced
// by a + b + 2·lo(a)·lo(b), lo being the low 32 bits.
func mix(a, b, c, d uint64) (uint64, uint64, uint64, uint64) {
	a += b + 2*(a&0xFFFFFFFF)*(b&0xFFFFFFFF)
	d = rotr(d^a, 32)
	c += d + 2*(c&0xFFFFFFFF)*(d&0xFFFFFFFF)
	b = rotr(b^c, 24)
	a += b + 2*(a&0xFFFFFFFF)*(b&0xFFFFFFFF)
	d = rotr(d^a, 16)
	c += d + 2*(c&0xFFFFFFFF)*(d&0xFFFFFFFF)
	b = rotr(b^c, 63)
	return a, b, c, d
}

func rotr(v uint64, n uint) uint64 { return v>>n | v<<(64-n) }
