package accounts

// A verifier for yescrypt ("$y$") and classic scrypt ("$7$") crypt(3)
// hashes, written from the yescrypt reference implementation's algorithm
// (openwall yescrypt-ref.c and yescrypt-common.c). Only what verification of
// the hashes found in /etc/shadow needs is implemented: no ROM (NROM), no
// hash upgrades (g), no encrypted hashes. Memory is bounded (maxYescryptMem)
// and the computation can be aborted between block mixes, so hostile cost
// parameters cannot exhaust the scanner.

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"math/bits"
	"strings"
)

// yescrypt flags (yescrypt.h).
const (
	ysWORM     = 0x001
	ysRW       = 0x002
	ysModeMask = 0x003
	ysFlavMask = 0x3fc
	ysPrehash  = 0x10000000
	// ysDefaults is RW | ROUNDS_6 | GATHER_4 | SIMPLE_2 | SBOX_12K, the only
	// RW flavour yescrypt defines.
	ysDefaults = 0x0b6
)

// pwxform settings of the default flavour.
const (
	pwxSimple = 2
	pwxGather = 4
	pwxRounds = 6
	sWidth    = 8
	pwxWords  = pwxGather * pwxSimple * 2           // 16 uint32 = 64 bytes
	sElems    = (1 << sWidth) * pwxSimple           // 512 uint64 per S-box
	sBytes    = 3 * sElems * 8                      // 12288
	sMask     = ((1 << sWidth) - 1) * pwxSimple * 8 // 0xff0
)

// maxYescryptMem bounds the memory one verification may use (V, B and the
// S-boxes). libxcrypt's default cost (5) needs 16 MiB; cost 8 needs 128 MiB.
const maxYescryptMem = 256 << 20

// maxYescryptB bounds B (128*r*p bytes), which PBKDF2 fills and reads in
// one go without a chance to abort.
const maxYescryptB = 16 << 20

var (
	errYescryptAborted = errors.New("yescrypt: aborted")
	errYescryptFormat  = errors.New("yescrypt: malformed hash")
	// errYescryptParams marks parameters crypt(3) itself rejects or that
	// need features not implemented here (ROM, upgrades, other flavours).
	errYescryptParams = errors.New("yescrypt: unsupported parameters")
	// errYescryptCost marks parameters above maxYescryptMem.
	errYescryptCost = errors.New("yescrypt: parameters too costly")
)

const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// atoi64 maps a crypt base-64 character to its value, or 64 if invalid.
func atoi64(c byte) uint32 {
	switch {
	case c == '.' || c == '/':
		return uint32(c - '.')
	case c >= '0' && c <= '9':
		return uint32(c-'0') + 2
	case c >= 'A' && c <= 'Z':
		return uint32(c-'A') + 12
	case c >= 'a' && c <= 'z':
		return uint32(c-'a') + 38
	}
	return 64
}

// decode64Uint32 decodes yescrypt's variable-length integer encoding.
func decode64Uint32(s string, min uint32) (uint32, string, bool) {
	if s == "" {
		return 0, s, false
	}
	c := atoi64(s[0])
	if c > 63 {
		return 0, s, false
	}
	s = s[1:]
	var start, end, chars, nbits uint32 = 0, 47, 1, 0
	v := min
	for c > end {
		v += (end + 1 - start) << nbits
		start = end + 1
		end = start + (62-end)/2
		chars++
		nbits += 6
	}
	v += (c - start) << nbits
	for chars--; chars > 0; chars-- {
		if s == "" {
			return 0, s, false
		}
		c = atoi64(s[0])
		if c > 63 {
			return 0, s, false
		}
		s = s[1:]
		nbits -= 6
		v += c << nbits
	}
	return v, s, true
}

// decode64Fixed decodes a fixed-width little-endian integer of nbits bits.
func decode64Fixed(s string, nbits uint32) (uint32, string, bool) {
	var v uint32
	for b := uint32(0); b < nbits; b += 6 {
		if s == "" {
			return 0, s, false
		}
		c := atoi64(s[0])
		if c > 63 {
			return 0, s, false
		}
		v |= c << b
		s = s[1:]
	}
	return v, s, true
}

// decode64Bytes decodes yescrypt's little-endian base-64 byte encoding (used
// for the $y$ salt), at most max bytes. Non-canonical encodings fail.
func decode64Bytes(s string, max int) ([]byte, bool) {
	var out []byte
	for len(s) > 0 {
		var v, nb uint32
		for len(s) > 0 && nb < 24 {
			c := atoi64(s[0])
			if c > 63 {
				return nil, false
			}
			v |= c << nb
			nb += 6
			s = s[1:]
		}
		if nb < 12 {
			return nil, false
		}
		for nb >= 8 {
			out = append(out, byte(v))
			v >>= 8
			nb -= 8
		}
		if v != 0 {
			return nil, false
		}
		if len(out) > max {
			return nil, false
		}
	}
	return out, true
}

// encode64Bytes is the inverse of decode64Bytes.
func encode64Bytes(src []byte) string {
	var sb strings.Builder
	for i := 0; i < len(src); {
		var v, nb uint32
		for nb < 24 && i < len(src) {
			v |= uint32(src[i]) << nb
			nb += 8
			i++
		}
		for b := uint32(0); b < nb; b += 6 {
			sb.WriteByte(itoa64[v&0x3f])
			v >>= 6
		}
	}
	return sb.String()
}

// yescryptParams are the parameters of one hash.
type yescryptParams struct {
	flags uint32
	N     uint64
	r, p  uint32
	t, g  uint32
	NROM  uint64
}

// yescryptHash is a parsed $y$ or $7$ hash.
type yescryptHash struct {
	params yescryptParams
	salt   []byte
	hash   string // the encoded 32-byte result
	scrypt bool   // $7$
}

// parseYescrypt parses a "$y$" or "$7$" hash string.
func parseYescrypt(h string) (*yescryptHash, error) {
	var out yescryptHash
	out.params.p = 1
	switch {
	case strings.HasPrefix(h, "$7$"):
		out.scrypt = true
		s := h[3:]
		if s == "" {
			return nil, errYescryptFormat
		}
		nlog2 := atoi64(s[0])
		if nlog2 < 1 || nlog2 > 63 {
			return nil, errYescryptFormat
		}
		s = s[1:]
		out.params.N = 1 << nlog2
		var ok bool
		if out.params.r, s, ok = decode64Fixed(s, 30); !ok {
			return nil, errYescryptFormat
		}
		if out.params.p, s, ok = decode64Fixed(s, 30); !ok {
			return nil, errYescryptFormat
		}
		i := strings.LastIndexByte(s, '$')
		if i < 0 {
			return nil, errYescryptFormat
		}
		out.salt = []byte(s[:i])
		out.hash = s[i+1:]
	case strings.HasPrefix(h, "$y$"):
		s := h[3:]
		flavor, s, ok := decode64Uint32(s, 0)
		if !ok {
			return nil, errYescryptFormat
		}
		switch {
		case flavor < ysRW:
			out.params.flags = flavor
		case flavor <= ysRW+(ysFlavMask>>2):
			out.params.flags = ysRW + ((flavor - ysRW) << 2)
		default:
			return nil, errYescryptFormat
		}
		var nlog2 uint32
		if nlog2, s, ok = decode64Uint32(s, 1); !ok || nlog2 > 63 {
			return nil, errYescryptFormat
		}
		out.params.N = 1 << nlog2
		if out.params.r, s, ok = decode64Uint32(s, 1); !ok {
			return nil, errYescryptFormat
		}
		if s != "" && s[0] != '$' {
			var have uint32
			if have, s, ok = decode64Uint32(s, 1); !ok {
				return nil, errYescryptFormat
			}
			if have&1 != 0 {
				if out.params.p, s, ok = decode64Uint32(s, 2); !ok {
					return nil, errYescryptFormat
				}
			}
			if have&2 != 0 {
				if out.params.t, s, ok = decode64Uint32(s, 1); !ok {
					return nil, errYescryptFormat
				}
			}
			if have&4 != 0 {
				if out.params.g, s, ok = decode64Uint32(s, 1); !ok {
					return nil, errYescryptFormat
				}
			}
			if have&8 != 0 {
				var nrom uint32
				if nrom, s, ok = decode64Uint32(s, 1); !ok || nrom > 63 {
					return nil, errYescryptFormat
				}
				out.params.NROM = 1 << nrom
			}
		}
		if s == "" || s[0] != '$' {
			return nil, errYescryptFormat
		}
		s = s[1:]
		i := strings.LastIndexByte(s, '$')
		if i < 0 {
			return nil, errYescryptFormat
		}
		salt, ok := decode64Bytes(s[:i], 64)
		if !ok {
			return nil, errYescryptFormat
		}
		out.salt = salt
		out.hash = s[i+1:]
	default:
		return nil, errYescryptFormat
	}
	if len(out.hash) != 43 {
		return nil, errYescryptFormat
	}
	if err := out.params.check(); err != nil {
		return nil, err
	}
	return &out, nil
}

// check applies yescrypt_kdf_body's sanity checks and the memory bound.
func (p *yescryptParams) check() error {
	switch p.flags & ysModeMask {
	case 0:
		if p.flags != 0 || p.t != 0 || p.NROM != 0 {
			return errYescryptParams
		}
	case ysWORM:
		if p.flags != ysWORM || p.NROM != 0 {
			return errYescryptParams
		}
	case ysRW:
		if p.flags != ysDefaults {
			return errYescryptParams
		}
	default:
		return errYescryptParams
	}
	if p.g != 0 || p.NROM != 0 {
		return errYescryptParams
	}
	if uint64(p.r)*uint64(p.p) >= 1<<30 || p.r < 1 || p.p < 1 {
		return errYescryptParams
	}
	if p.N&(p.N-1) != 0 || p.N <= 1 {
		return errYescryptParams
	}
	if p.flags&ysRW != 0 && p.N/uint64(p.p) <= 1 {
		return errYescryptParams
	}
	// Memory: V = 128*r*N, B = 128*r*p, S = sBytes*p (RW only).
	hi, v := bits.Mul64(128*uint64(p.r), p.N)
	if hi != 0 || v > maxYescryptMem {
		return errYescryptCost
	}
	b := 128 * uint64(p.r) * uint64(p.p)
	if b > maxYescryptB {
		return errYescryptCost
	}
	mem := v + b
	if p.flags&ysRW != 0 {
		mem += sBytes * uint64(p.p)
	}
	if mem > maxYescryptMem {
		return errYescryptCost
	}
	return nil
}

// yescryptState holds the buffers of one hash's verifications, reused from
// one candidate to the next.
type yescryptState struct {
	h    *yescryptHash
	V    []uint32
	B    []uint32
	X    []uint32
	Y    []uint32
	S    [][]uint64 // per p: 3*sElems
	stop func() bool
	// work done since the last stop check, in 128-byte blocks
	work int
}

// newYescryptState allocates the buffers for h.
func newYescryptState(h *yescryptHash, stop func() bool) *yescryptState {
	r := int(h.params.r)
	st := &yescryptState{
		h:    h,
		V:    make([]uint32, 32*r*int(h.params.N)),
		B:    make([]uint32, 32*r*int(h.params.p)),
		X:    make([]uint32, 32*r),
		Y:    make([]uint32, 32*r),
		stop: stop,
	}
	return st
}

// verify reports whether passwd matches the hash. It returns
// errYescryptAborted when stop asked to give up.
func (st *yescryptState) verify(passwd []byte) (bool, error) {
	p := st.h.params
	var dk []byte
	var err error
	if p.flags&ysRW != 0 && p.N/uint64(p.p) >= 0x100 && p.N/uint64(p.p)*uint64(p.r) >= 0x20000 {
		pre := p
		pre.flags |= ysPrehash
		pre.N >>= 6
		pre.t = 0
		dk, err = st.kdfBody(passwd, pre)
		if err != nil {
			return false, err
		}
		passwd = dk
	}
	dk, err = st.kdfBody(passwd, p)
	if err != nil {
		return false, err
	}
	got := encode64Bytes(dk)
	return subtle.ConstantTimeCompare([]byte(got), []byte(st.h.hash)) == 1, nil
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func pbkdf2SHA256(passwd, salt []byte, n int) []byte {
	out, err := pbkdf2.Key(sha256.New, string(passwd), salt, 1, n)
	if err != nil {
		// Lengths out of range are excluded by check(); FIPS 140-only
		// mode may refuse short inputs. The verifier recovers.
		panic(err)
	}
	return out
}

func wordsToBytes(w []uint32) []byte {
	b := make([]byte, 4*len(w))
	for i, x := range w {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

// kdfBody is yescrypt_kdf_body with a 32-byte output.
func (st *yescryptState) kdfBody(passwd []byte, p yescryptParams) ([]byte, error) {
	r := int(p.r)
	nB := 32 * r * int(p.p)
	B := st.B[:nB]
	if p.flags != 0 {
		key := "yescrypt"
		if p.flags&ysPrehash != 0 {
			key = "yescrypt-prehash"
		}
		passwd = hmacSHA256([]byte(key), passwd)
	}
	bb := pbkdf2SHA256(passwd, st.h.salt, 4*nB)
	for i := range B {
		B[i] = binary.LittleEndian.Uint32(bb[4*i:])
	}
	if p.flags != 0 {
		// passwd becomes the first 32 bytes of B (updated in smix for RW).
		passwd = append([]byte(nil), bb[:32]...)
	}
	if p.flags&ysRW != 0 {
		if err := st.smix(B, r, p.N, p.p, p.t, p.flags, passwd); err != nil {
			return nil, err
		}
	} else {
		for i := 0; i < int(p.p); i++ {
			if err := st.smix(B[32*r*i:32*r*(i+1)], r, p.N, 1, p.t, p.flags, nil); err != nil {
				return nil, err
			}
		}
	}
	dk := pbkdf2SHA256(passwd, wordsToBytes(B), 32)
	if p.flags != 0 && p.flags&ysPrehash == 0 {
		clientKey := hmacSHA256(dk, []byte("Client Key"))
		sum := sha256.Sum256(clientKey)
		dk = sum[:]
	}
	return dk, nil
}

// pwxCtx is the pwxform context of one lane.
type pwxCtx struct {
	S          []uint64
	s0, s1, s2 int // offsets of S0, S1, S2 in S
	w          int
}

func p2floor(x uint64) uint64 {
	for y := x & (x - 1); y != 0; y = x & (x - 1) {
		x = y
	}
	return x
}

func wrap(x, i uint64) uint64 {
	n := p2floor(i)
	return (x & (n - 1)) + (i - n)
}

// smix is yescrypt's SMix over all p lanes of B.
func (st *yescryptState) smix(B []uint32, r int, N uint64, p, t, flags uint32, passwd []byte) error {
	s := 32 * r
	nchunk := N / uint64(p)
	nloopAll := nchunk
	if flags&ysRW != 0 {
		if t <= 1 {
			if t != 0 {
				nloopAll *= 2
			}
			nloopAll = (nloopAll + 2) / 3
		} else {
			nloopAll *= uint64(t) - 1
		}
	} else if t != 0 {
		if t == 1 {
			nloopAll += (nloopAll + 1) / 2
		}
		nloopAll *= uint64(t)
	}
	var nloopRW uint64
	if flags&ysRW != 0 {
		nloopRW = nloopAll / uint64(p)
	}
	nchunk &^= 1
	nloopAll++
	nloopAll &^= 1
	nloopRW++
	nloopRW &^= 1

	var ctxs []pwxCtx
	if flags&ysRW != 0 {
		if len(st.S) < int(p) {
			st.S = make([][]uint64, p)
		}
		ctxs = make([]pwxCtx, p)
	}
	var vchunk uint64
	for i := uint32(0); i < p; i, vchunk = i+1, vchunk+nchunk {
		np := nchunk
		if i == p-1 {
			np = N - vchunk
		}
		Bp := B[int(i)*s : int(i+1)*s]
		Vp := st.V[int(vchunk)*s:]
		var ctx *pwxCtx
		if flags&ysRW != 0 {
			ctx = &ctxs[i]
			// Fill S with SMix1_1(B_i, Sbytes/128) using salsa20/8.
			sw := make([]uint32, sBytes/4)
			if err := st.smix1(Bp, 1, sBytes/128, 0, sw, nil); err != nil {
				return err
			}
			if st.S[i] == nil {
				st.S[i] = make([]uint64, 3*sElems)
			}
			S := st.S[i]
			for k := range S {
				S[k] = uint64(sw[2*k]) | uint64(sw[2*k+1])<<32
			}
			ctx.S = S
			ctx.s2 = 0
			ctx.s1 = sElems
			ctx.s0 = 2 * sElems
			ctx.w = 0
			if i == 0 {
				key := wordsToBytes(Bp[s-16 : s])
				copy(passwd, hmacSHA256(key, passwd[:32]))
			}
		}
		if err := st.smix1(Bp, r, np, flags, Vp, ctx); err != nil {
			return err
		}
		if err := st.smix2(Bp, r, p2floor(np), nloopRW, flags, Vp, ctx); err != nil {
			return err
		}
	}
	for i := uint32(0); i < p; i++ {
		Bp := B[int(i)*s : int(i+1)*s]
		var ctx *pwxCtx
		if flags&ysRW != 0 {
			ctx = &ctxs[i]
		}
		if err := st.smix2(Bp, r, N, nloopAll-nloopRW, flags&^ysRW, st.V, ctx); err != nil {
			return err
		}
	}
	return nil
}

// check calls stop about every 256 KiB of block mixing.
func (st *yescryptState) check(r int) bool {
	st.work += r
	if st.work < 2048 {
		return false
	}
	st.work = 0
	return st.stop != nil && st.stop()
}

// shuffle copies B into X in the SIMD-shuffled word order.
func shuffle(X, B []uint32, r int) {
	for k := 0; k < 2*r; k++ {
		for i := 0; i < 16; i++ {
			X[k*16+i] = B[k*16+(i*5%16)]
		}
	}
}

func unshuffle(B, X []uint32, r int) {
	for k := 0; k < 2*r; k++ {
		for i := 0; i < 16; i++ {
			B[k*16+(i*5%16)] = X[k*16+i]
		}
	}
}

func integerify(X []uint32, r int) uint64 {
	x := X[(2*r-1)*16:]
	return uint64(x[13])<<32 | uint64(x[0])
}

func (st *yescryptState) smix1(B []uint32, r int, N uint64, flags uint32, V []uint32, ctx *pwxCtx) error {
	s := 32 * r
	X := st.X[:s]
	shuffle(X, B, r)
	for i := uint64(0); i < N; i++ {
		if st.check(r) {
			return errYescryptAborted
		}
		copy(V[int(i)*s:int(i+1)*s], X)
		if flags&ysRW != 0 && i > 1 {
			j := wrap(integerify(X, r), i)
			xorWords(X, V[int(j)*s:int(j+1)*s])
		}
		if ctx != nil {
			blockmixPwxform(X, ctx, r)
		} else {
			blockmixSalsa8(X, st.Y[:s], r)
		}
	}
	unshuffle(B, X, r)
	return nil
}

func (st *yescryptState) smix2(B []uint32, r int, N, nloop uint64, flags uint32, V []uint32, ctx *pwxCtx) error {
	s := 32 * r
	X := st.X[:s]
	shuffle(X, B, r)
	for i := uint64(0); i < nloop; i++ {
		if st.check(r) {
			return errYescryptAborted
		}
		j := integerify(X, r) & (N - 1)
		vj := V[int(j)*s : int(j+1)*s]
		xorWords(X, vj)
		if flags&ysRW != 0 {
			copy(vj, X)
		}
		if ctx != nil {
			blockmixPwxform(X, ctx, r)
		} else {
			blockmixSalsa8(X, st.Y[:s], r)
		}
	}
	unshuffle(B, X, r)
	return nil
}

func xorWords(dst, src []uint32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// salsa20 applies the Salsa20 core with the given number of rounds to a
// 16-word block kept in the SIMD-shuffled order (word i of B is word
// i*5%16 of the Salsa20 state).
func salsa20(B []uint32, rounds int) {
	B = B[:16]
	x0, x5, x10, x15 := B[0], B[1], B[2], B[3]
	x4, x9, x14, x3 := B[4], B[5], B[6], B[7]
	x8, x13, x2, x7 := B[8], B[9], B[10], B[11]
	x12, x1, x6, x11 := B[12], B[13], B[14], B[15]
	for i := 0; i < rounds; i += 2 {
		// columns
		x4 ^= bits.RotateLeft32(x0+x12, 7)
		x8 ^= bits.RotateLeft32(x4+x0, 9)
		x12 ^= bits.RotateLeft32(x8+x4, 13)
		x0 ^= bits.RotateLeft32(x12+x8, 18)

		x9 ^= bits.RotateLeft32(x5+x1, 7)
		x13 ^= bits.RotateLeft32(x9+x5, 9)
		x1 ^= bits.RotateLeft32(x13+x9, 13)
		x5 ^= bits.RotateLeft32(x1+x13, 18)

		x14 ^= bits.RotateLeft32(x10+x6, 7)
		x2 ^= bits.RotateLeft32(x14+x10, 9)
		x6 ^= bits.RotateLeft32(x2+x14, 13)
		x10 ^= bits.RotateLeft32(x6+x2, 18)

		x3 ^= bits.RotateLeft32(x15+x11, 7)
		x7 ^= bits.RotateLeft32(x3+x15, 9)
		x11 ^= bits.RotateLeft32(x7+x3, 13)
		x15 ^= bits.RotateLeft32(x11+x7, 18)

		// rows
		x1 ^= bits.RotateLeft32(x0+x3, 7)
		x2 ^= bits.RotateLeft32(x1+x0, 9)
		x3 ^= bits.RotateLeft32(x2+x1, 13)
		x0 ^= bits.RotateLeft32(x3+x2, 18)

		x6 ^= bits.RotateLeft32(x5+x4, 7)
		x7 ^= bits.RotateLeft32(x6+x5, 9)
		x4 ^= bits.RotateLeft32(x7+x6, 13)
		x5 ^= bits.RotateLeft32(x4+x7, 18)

		x11 ^= bits.RotateLeft32(x10+x9, 7)
		x8 ^= bits.RotateLeft32(x11+x10, 9)
		x9 ^= bits.RotateLeft32(x8+x11, 13)
		x10 ^= bits.RotateLeft32(x9+x8, 18)

		x12 ^= bits.RotateLeft32(x15+x14, 7)
		x13 ^= bits.RotateLeft32(x12+x15, 9)
		x14 ^= bits.RotateLeft32(x13+x12, 13)
		x15 ^= bits.RotateLeft32(x14+x13, 18)
	}
	B[0] += x0
	B[1] += x5
	B[2] += x10
	B[3] += x15
	B[4] += x4
	B[5] += x9
	B[6] += x14
	B[7] += x3
	B[8] += x8
	B[9] += x13
	B[10] += x2
	B[11] += x7
	B[12] += x12
	B[13] += x1
	B[14] += x6
	B[15] += x11
}

// blockmixSalsa8 is scrypt's BlockMix with salsa20/8; Y is scratch of the
// same size as B.
func blockmixSalsa8(B, Y []uint32, r int) {
	var X [16]uint32
	copy(X[:], B[(2*r-1)*16:])
	for i := 0; i < 2*r; i++ {
		xorWords(X[:], B[i*16:i*16+16])
		salsa20(X[:], 8)
		copy(Y[i*16:], X[:])
	}
	for i := 0; i < r; i++ {
		copy(B[i*16:i*16+16], Y[(2*i)*16:(2*i)*16+16])
	}
	for i := 0; i < r; i++ {
		copy(B[(i+r)*16:(i+r)*16+16], Y[(2*i+1)*16:(2*i+1)*16+16])
	}
}

// pwxform transforms one 64-byte block with the lane's S-boxes.
func pwxform(X *[pwxWords]uint32, ctx *pwxCtx) {
	S0 := (*[sElems]uint64)(ctx.S[ctx.s0 : ctx.s0+sElems])
	S1 := (*[sElems]uint64)(ctx.S[ctx.s1 : ctx.s1+sElems])
	S2 := (*[sElems]uint64)(ctx.S[ctx.s2 : ctx.s2+sElems])
	w := ctx.w
	// one simple-lane step: B_{j,k} <-- (hi*lo + S0[p0+k]) xor S1[p1+k]
	step := func(lo, hi uint32, s0, s1 uint64) uint64 {
		return (uint64(hi)*uint64(lo) + s0) ^ s1
	}
	for i := 0; i < pwxRounds; i++ {
		store := i != 0 && i != pwxRounds-1
		for j := 0; j < pwxGather*4; j += 4 {
			p0 := (X[j] & sMask) >> 3
			p1 := (X[j+1] & sMask) >> 3
			x0 := step(X[j], X[j+1], S0[p0&(sElems-1)], S1[p1&(sElems-1)])
			x1 := step(X[j+2], X[j+3], S0[(p0+1)&(sElems-1)], S1[(p1+1)&(sElems-1)])
			X[j], X[j+1] = uint32(x0), uint32(x0>>32)
			X[j+2], X[j+3] = uint32(x1), uint32(x1>>32)
			if store {
				S2[w&(sElems-1)] = x0
				S2[(w+1)&(sElems-1)] = x1
				w += 2
			}
		}
	}
	ctx.s0, ctx.s1, ctx.s2 = ctx.s2, ctx.s0, ctx.s1
	ctx.w = w & (sElems - 1)
}

// blockmixPwxform is yescrypt's BlockMix_pwxform.
func blockmixPwxform(B []uint32, ctx *pwxCtx, r int) {
	r1 := 128 * r / 64
	var X [pwxWords]uint32
	copy(X[:], B[(r1-1)*pwxWords:])
	for i := 0; i < r1; i++ {
		blk := B[i*pwxWords : (i+1)*pwxWords]
		if r1 > 1 {
			for k := range X {
				X[k] ^= blk[k]
			}
		}
		pwxform(&X, ctx)
		copy(blk, X[:])
	}
	i := (r1 - 1) * pwxWords * 4 / 64
	salsa20(B[i*16:], 2)
	for i++; i < 2*r; i++ {
		xorWords(B[i*16:i*16+16], B[(i-1)*16:(i-1)*16+16])
		salsa20(B[i*16:], 2)
	}
}
