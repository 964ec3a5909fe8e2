// Package keyslot computes Redis Cluster hash slots, so that code which
// must touch several keys in one command, transaction or BLMOVE can check
// (and tests can prove) that they share a slot. A Redis Cluster refuses
// such commands with CROSSSLOT otherwise, and go-redis's cluster client
// refuses a transaction or WATCH across slots before sending it.
package keyslot

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// Tag returns the part of key that is hashed: the hash tag (what lies
// between the first "{" and the next "}", when not empty), else the whole
// key.
func Tag(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] != '{' {
			continue
		}
		for j := i + 1; j < len(key); j++ {
			if key[j] == '}' {
				if j == i+1 {
					return key // "{}": no tag, the whole key is hashed
				}
				return key[i+1 : j]
			}
		}
		return key // "{" without "}": no tag
	}
	return key
}

// Slot returns key's hash slot: CRC16 (XMODEM) of its Tag, mod 16384.
func Slot(key string) int {
	return int(crc16(Tag(key))) % Slots
}

// Same reports whether all keys hash to one slot.
func Same(keys ...string) bool {
	for _, k := range keys[min(1, len(keys)):] {
		if Slot(k) != Slot(keys[0]) {
			return false
		}
	}
	return true
}

// crc16 is CRC-16/XMODEM (poly 0x1021, init 0), the one Redis Cluster uses.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
