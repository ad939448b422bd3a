// Package argon2id derives Argon2id tags (RFC 9106, version 0x13) into
// working memory that the caller keeps between derivations.
//
// golang.org/x/crypto/argon2 computes the same tags but allocates its
// working memory on every call (golang/go#36634 asks for a way to reuse it,
// open since 2020). On a provider that hashes one login after another, that
// is 19 MiB to allocate, zero and collect per login: the runtime zeroes such
// an allocation in chunks and gives up its core between chunks while the
// other core is busy, and the collector runs every few logins. Measured under
// `idp bench` on 2 cores: about 3 ms of CPU per login, and a p99 of the
// derivation itself four times its median. A derivation here writes every
// block of the first pass before reading it, so a reused Memory needs no
// zeroing, and it yields at each of Argon2's synchronisation points so that
// the requests waiting for a core do not wait for Go's 10 ms preemption.
//
// x/crypto stays the oracle of the tests (every tag here is compared with
// argon2.IDKey's), and the source of BLAKE2b.
package argon2id

import (
	"encoding/binary"
	"runtime"
	"sync"

	"golang.org/x/crypto/blake2b"
)

const (
	version    = 0x13
	typeID     = 2 // Argon2id's y in H0 and in the address blocks
	words      = 128
	syncPoints = 4 // slices per pass
)

// block is one 1 KiB block of Argon2's memory, as 128 little-endian words.
type block [words]uint64

// Memory is the working memory of derivations, grown to the largest one asked
// so far and reused by the next. Its zero value is ready to use. A Memory is
// not safe for concurrent use: keep one per concurrent derivation.
//
// Like x/crypto's freed memory, which stays in the heap until reused, a
// Memory holds the blocks of its last derivation until the next overwrites
// them.
type Memory struct {
	blocks []block
}

// Bytes is the memory held, in bytes.
func (m *Memory) Bytes() int { return len(m.blocks) * words * 8 }

// Key returns the keyLen-byte Argon2id tag of password and salt with time
// passes over memoryKiB KiB in threads lanes, as argon2.IDKey does. It panics
// on parameters RFC 9106 does not allow (time or threads below 1), like
// argon2.IDKey; memoryKiB below 8 × threads is raised to it.
func (m *Memory) Key(password, salt []byte, time, memoryKiB uint32, threads uint8, keyLen uint32) []byte {
	return m.derive(password, salt, nil, nil, time, memoryKiB, threads, keyLen)
}

func (m *Memory) derive(password, salt, secret, data []byte, time, memoryKiB uint32, threads uint8, keyLen uint32) []byte {
	if time < 1 {
		panic("argon2id: time must be at least 1")
	}
	if threads < 1 {
		panic("argon2id: threads must be at least 1")
	}
	h0 := initialHash(password, salt, secret, data, time, memoryKiB, uint32(threads), keyLen)

	lanes := uint32(threads)
	// m' = 4p × ⌊m / 4p⌋ blocks, at least two per segment.
	total := memoryKiB / (syncPoints * lanes) * (syncPoints * lanes)
	if total < 2*syncPoints*lanes {
		total = 2 * syncPoints * lanes
	}
	if uint32(len(m.blocks)) < total {
		m.blocks = make([]block, total)
	}
	f := filler{
		b:        m.blocks[:total],
		lanes:    lanes,
		laneLen:  total / lanes,
		segLen:   total / lanes / syncPoints,
		passes:   time,
		totalLen: total,
	}
	f.firstBlocks(&h0)
	for pass := range time {
		for slice := range uint32(syncPoints) {
			f.slice(pass, slice)
		}
	}
	return f.tag(keyLen)
}

// initialHash is H0 of RFC 9106 §3.2, with 8 spare bytes at the end for the
// block and lane numbers of the first blocks.
func initialHash(password, salt, secret, data []byte, time, memoryKiB, lanes, keyLen uint32) [blake2b.Size + 8]byte {
	h, _ := blake2b.New512(nil)
	var le [4]byte
	put := func(v uint32) {
		binary.LittleEndian.PutUint32(le[:], v)
		h.Write(le[:])
	}
	put(lanes)
	put(keyLen)
	put(memoryKiB)
	put(time)
	put(version)
	put(typeID)
	for _, field := range [][]byte{password, salt, secret, data} {
		put(uint32(len(field)))
		h.Write(field)
	}
	var h0 [blake2b.Size + 8]byte
	h.Sum(h0[:0])
	return h0
}

// filler fills one derivation's blocks: lane l's block j is b[l*laneLen+j].
type filler struct {
	b                      []block
	lanes, laneLen, segLen uint32
	passes, totalLen       uint32
}

// firstBlocks sets each lane's blocks 0 and 1 from H0 (RFC 9106 §3.2, steps 3
// and 4).
func (f *filler) firstBlocks(h0 *[blake2b.Size + 8]byte) {
	var buf [words * 8]byte
	for lane := range f.lanes {
		binary.LittleEndian.PutUint32(h0[blake2b.Size+4:], lane)
		for j := range uint32(2) {
			binary.LittleEndian.PutUint32(h0[blake2b.Size:], j)
			variableHash(buf[:], h0[:])
			dst := &f.b[lane*f.laneLen+j]
			for i := range dst {
				dst[i] = binary.LittleEndian.Uint64(buf[i*8:])
			}
		}
	}
}

// slice fills one segment of every lane: in parallel when there are several
// lanes (segments of one slice only read blocks of earlier slices in other
// lanes), and then yields, so that other goroutines get the core at each of
// Argon2's synchronisation points rather than when the scheduler preempts a
// derivation that has run for 10 ms.
func (f *filler) slice(pass, slice uint32) {
	if f.lanes == 1 {
		f.segment(pass, slice, 0)
		runtime.Gosched()
		return
	}
	var wg sync.WaitGroup
	for lane := uint32(1); lane < f.lanes; lane++ {
		wg.Go(func() { f.segment(pass, slice, lane) })
	}
	f.segment(pass, slice, 0)
	wg.Wait()
}

// segment fills lane's segment of slice in pass (RFC 9106 §3.3, §3.4).
func (f *filler) segment(pass, slice, lane uint32) {
	// Argon2id takes reference indexes from the data in all but the first
	// half of the first pass, where it takes them from address blocks that
	// depend only on the position, so that they do not leak the password
	// through timing.
	independent := pass == 0 && slice < syncPoints/2
	var input, addresses, zero block
	if independent {
		input[0], input[1], input[2] = uint64(pass), uint64(lane), uint64(slice)
		input[3], input[4], input[5] = uint64(f.totalLen), uint64(f.passes), typeID
	}
	start := uint32(0)
	if pass == 0 && slice == 0 {
		start = 2 // blocks 0 and 1 come from H0
		if independent {
			nextAddresses(&addresses, &input, &zero)
		}
	}
	laneBase := lane * f.laneLen
	for i := start; i < f.segLen; i++ {
		j := slice*f.segLen + i // column in the lane
		prev := laneBase + j - 1
		if j == 0 {
			prev = laneBase + f.laneLen - 1
		}
		var pseudo uint64
		if independent {
			if i%words == 0 {
				nextAddresses(&addresses, &input, &zero)
			}
			pseudo = addresses[i%words]
		} else {
			pseudo = f.b[prev][0]
		}
		ref := f.reference(pseudo, pass, slice, lane, i)
		compress(&f.b[laneBase+j], &f.b[prev], &f.b[ref], pass > 0)
	}
}

// nextAddresses advances the counter of input and computes the address block
// G(0, G(0, input)).
func nextAddresses(addresses, input, zero *block) {
	input[6]++
	compress(addresses, zero, input, false)
	compress(addresses, zero, addresses, false)
}

// reference maps the pseudo-random word of block i of lane's segment in
// (pass, slice) to the index in b of the block it is mixed with (RFC 9106
// §3.4.1.1 and §3.4.2).
func (f *filler) reference(pseudo uint64, pass, slice, lane, i uint32) uint32 {
	j1, j2 := pseudo&0xFFFFFFFF, uint32(pseudo>>32)
	refLane := j2 % f.lanes
	if pass == 0 && slice == 0 {
		refLane = lane
	}
	// The reference set: the blocks of the lane's finished segments (all
	// three others after the first pass), plus those of the current segment
	// when the lane is the block's own, less the block just before.
	var size, begin uint32
	if pass == 0 {
		size = slice * f.segLen
	} else {
		size = (syncPoints - 1) * f.segLen
		begin = (slice + 1) * f.segLen % f.laneLen
	}
	if refLane == lane {
		size += i - 1
	} else if i == 0 {
		size--
	}
	x := j1 * j1 >> 32
	y := uint64(size) * x >> 32
	z := uint64(size) - 1 - y
	return refLane*f.laneLen + uint32((uint64(begin)+z)%uint64(f.laneLen))
}

// tag XORs the last blocks of the lanes and hashes them to keyLen bytes.
func (f *filler) tag(keyLen uint32) []byte {
	var last block
	for lane := range f.lanes {
		for i, w := range &f.b[lane*f.laneLen+f.laneLen-1] {
			last[i] ^= w
		}
	}
	var buf [words * 8]byte
	for i, w := range last {
		binary.LittleEndian.PutUint64(buf[i*8:], w)
	}
	out := make([]byte, keyLen)
	variableHash(out, buf[:])
	return out
}

// variableHash is H' of RFC 9106 §3.3: BLAKE2b stretched to len(out) bytes.
func variableHash(out, in []byte) {
	var le [4]byte
	binary.LittleEndian.PutUint32(le[:], uint32(len(out)))
	if len(out) <= blake2b.Size {
		h, _ := blake2b.New(len(out), nil)
		h.Write(le[:])
		h.Write(in)
		h.Sum(out[:0])
		return
	}
	// V1 = H(len || in), V(i+1) = H(Vi); the output is the first 32 bytes
	// of each V but the last, then the last whole, sized to fit.
	h, _ := blake2b.New512(nil)
	h.Write(le[:])
	h.Write(in)
	var v [blake2b.Size]byte
	h.Sum(v[:0])
	n := copy(out, v[:32])
	for len(out)-n > blake2b.Size {
		h.Reset()
		h.Write(v[:])
		h.Sum(v[:0])
		n += copy(out[n:], v[:32])
	}
	last, _ := blake2b.New(len(out)-n, nil)
	last.Write(v[:])
	last.Sum(out[n:n])
}
