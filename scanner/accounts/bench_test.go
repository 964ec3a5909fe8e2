package accounts

import "testing"

// BenchmarkVerify measures one verification per scheme (default costs as
// written by mkpasswd, except where noted).
//
//	go test -run '^$' -bench Verify -benchtime 10x ./scanner/accounts/
func BenchmarkVerify(b *testing.B) {
	for _, tc := range []struct{ name, hash string }{
		{"yescrypt-cost5", yesRoot},
		{"yescrypt-cost1", yesStrongR1},
		{"scrypt-N14-r32", scryptToor},
		{"sha512crypt-5000", sha512Root},
		{"sha256crypt-5000", sha256Pass},
		{"md5crypt", md5Changeme},
		{"bcrypt-cost5", bcryptAdmin},
		{"bcrypt-cost10", "$2b$10$" + bcryptAdmin[7:]},
	} {
		b.Run(tc.name, func(b *testing.B) {
			v, err := newVerifier(tc.hash, nil)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := v.verify([]byte("not-the-password")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
