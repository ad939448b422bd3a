//go:build !purego

#include "textflag.h"

// compressAVX2 computes G of RFC 9106 §3.5 four words per instruction. A row
// of the block (16 words) is four YMM registers A, B, C and D holding
// v0…v3, v4…v7, v8…v11 and v12…v15, so that GB runs on the four columns
// (v0,v4,v8,v12) … (v3,v7,v11,v15) at once; rotating B, C and D by one, two
// and three words lines up the diagonals (v0,v5,v10,v15) … (v3,v4,v9,v14)
// for the second half of P. A column of 16-byte registers is gathered the
// same way, two registers per YMM.

// Byte shuffles that rotate each 64-bit word right by 24 and by 16 bits.
DATA rotr24<>+0x00(SB)/8, $0x0201000706050403
DATA rotr24<>+0x08(SB)/8, $0x0a09080f0e0d0c0b
DATA rotr24<>+0x10(SB)/8, $0x0201000706050403
DATA rotr24<>+0x18(SB)/8, $0x0a09080f0e0d0c0b
GLOBL rotr24<>(SB), (NOPTR+RODATA), $32

DATA rotr16<>+0x00(SB)/8, $0x0100070605040302
DATA rotr16<>+0x08(SB)/8, $0x09080f0e0d0c0b0a
DATA rotr16<>+0x10(SB)/8, $0x0100070605040302
DATA rotr16<>+0x18(SB)/8, $0x09080f0e0d0c0b0a
GLOBL rotr16<>(SB), (NOPTR+RODATA), $32

// a += b + 2·lo(a)·lo(b), t scratch.
#define MULADD(a, b, t) \
	VPMULUDQ b, a, t \
	VPADDQ   b, a, a \
	VPADDQ   t, t, t \
	VPADDQ   t, a, a

// GB on the four lanes of a, b, c, d; Y14 and Y15 hold rotr24 and rotr16.
#define GB(a, b, c, d, t) \
	MULADD(a, b, t)      \
	VPXOR    a, d, d     \
	VPSHUFD  $0xB1, d, d \
	MULADD(c, d, t)      \
	VPXOR    c, b, b     \
	VPSHUFB  Y14, b, b   \
	MULADD(a, b, t)      \
	VPXOR    a, d, d     \
	VPSHUFB  Y15, d, d   \
	MULADD(c, d, t)      \
	VPXOR    c, b, b     \
	VPADDQ   b, b, t     \
	VPSRLQ   $63, b, b   \
	VPXOR    t, b, b

// P on the sixteen words in a, b, c, d.
#define P(a, b, c, d, t) \
	GB(a, b, c, d, t)     \
	VPERMQ $0x39, b, b    \
	VPERMQ $0x4E, c, c    \
	VPERMQ $0x93, d, d    \
	GB(a, b, c, d, t)     \
	VPERMQ $0x93, b, b    \
	VPERMQ $0x4E, c, c    \
	VPERMQ $0x39, d, d

// One row (128 bytes at off + AX): a, b, c, d = x ⊕ y.
#define XORROWS(off, a, b, c, d) \
	VMOVDQU off(SI)(AX*1), a         \
	VPXOR   off(DX)(AX*1), a, a      \
	VMOVDQU off+32(SI)(AX*1), b      \
	VPXOR   off+32(DX)(AX*1), b, b   \
	VMOVDQU off+64(SI)(AX*1), c      \
	VPXOR   off+64(DX)(AX*1), c, c   \
	VMOVDQU off+96(SI)(AX*1), d      \
	VPXOR   off+96(DX)(AX*1), d, d

// One row back into q (BX) at off + AX.
#define STOREROWS(off, a, b, c, d) \
	VMOVDQU a, off(BX)(AX*1)    \
	VMOVDQU b, off+32(BX)(AX*1) \
	VMOVDQU c, off+64(BX)(AX*1) \
	VMOVDQU d, off+96(BX)(AX*1)

// Column col of q (BX) at byte offset off = 16·col: its registers are at
// off + 128·row; two rows per YMM.
#define LOADCOL(off, xa, a, xb, b, xc, c, xd, d) \
	VMOVDQU     off(BX), xa           \
	VINSERTI128 $1, off+128(BX), a, a \
	VMOVDQU     off+256(BX), xb       \
	VINSERTI128 $1, off+384(BX), b, b \
	VMOVDQU     off+512(BX), xc       \
	VINSERTI128 $1, off+640(BX), c, c \
	VMOVDQU     off+768(BX), xd       \
	VINSERTI128 $1, off+896(BX), d, d

// func compressAVX2(out, x, y *block, xorOut bool)
TEXT ·compressAVX2(SB), 0, $1024-25
	MOVQ    out+0(FP), DI
	MOVQ    x+8(FP), SI
	MOVQ    y+16(FP), DX
	MOVBQZX xorOut+24(FP), CX
	MOVQ    SP, BX // q, 1 KiB on the stack
	// Ask for all 16 lines of y at once: in all but the first quarter of a
	// derivation y is a block at a random place, often out of the caches, and
	// the hardware prefetcher would only fetch its lines as the rows loop
	// reached them. Measured: 2 derivations at once on 2 cores, 64 MiB each,
	// 10-15 % faster; at 19 MiB within the noise or better.
	XORQ AX, AX
prefetch:
	PREFETCHT0 (DX)(AX*1)
	ADDQ       $64, AX
	CMPQ       AX, $1024
	JB         prefetch
	VMOVDQU rotr24<>(SB), Y14
	VMOVDQU rotr16<>(SB), Y15

	// q = x ⊕ y with P applied to each row, two rows at a time.
	XORQ AX, AX
rows:
	XORROWS(0, Y0, Y1, Y2, Y3)
	XORROWS(128, Y4, Y5, Y6, Y7)
	P(Y0, Y1, Y2, Y3, Y12)
	P(Y4, Y5, Y6, Y7, Y13)
	STOREROWS(0, Y0, Y1, Y2, Y3)
	STOREROWS(128, Y4, Y5, Y6, Y7)
	ADDQ    $256, AX
	CMPQ    AX, $1024
	JB      rows

	// P on each column, two columns at a time; q is updated in place.
	MOVQ BX, R8
	XORQ AX, AX
cols:
	LEAQ (R8)(AX*1), BX
	LOADCOL(0, X0, Y0, X1, Y1, X2, Y2, X3, Y3)
	LOADCOL(16, X4, Y4, X5, Y5, X6, Y6, X7, Y7)
	P(Y0, Y1, Y2, Y3, Y12)
	P(Y4, Y5, Y6, Y7, Y13)
	VMOVDQU      X0, 0(BX)
	VEXTRACTI128 $1, Y0, 128(BX)
	VMOVDQU      X1, 256(BX)
	VEXTRACTI128 $1, Y1, 384(BX)
	VMOVDQU      X2, 512(BX)
	VEXTRACTI128 $1, Y2, 640(BX)
	VMOVDQU      X3, 768(BX)
	VEXTRACTI128 $1, Y3, 896(BX)
	VMOVDQU      X4, 16(BX)
	VEXTRACTI128 $1, Y4, 144(BX)
	VMOVDQU      X5, 272(BX)
	VEXTRACTI128 $1, Y5, 400(BX)
	VMOVDQU      X6, 528(BX)
	VEXTRACTI128 $1, Y6, 656(BX)
	VMOVDQU      X7, 784(BX)
	VEXTRACTI128 $1, Y7, 912(BX)
	ADDQ         $32, AX
	CMPQ         AX, $128
	JB           cols
	MOVQ         R8, BX

	// out = q ⊕ x ⊕ y, or out ⊕= q ⊕ x ⊕ y (xorOut, the same every turn:
	// the branch is predicted).
	XORQ AX, AX
out:
	VMOVDQU 0(BX)(AX*1), Y0
	VPXOR   0(SI)(AX*1), Y0, Y0
	VPXOR   0(DX)(AX*1), Y0, Y0
	TESTQ   CX, CX
	JZ      store
	VPXOR   0(DI)(AX*1), Y0, Y0
store:
	VMOVDQU Y0, 0(DI)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, $1024
	JB      out
	VZEROUPPER
	RET
