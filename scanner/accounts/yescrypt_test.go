package accounts

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Vectors from the yescrypt reference implementation's TESTS-OK, all for
// the password "pleaseletmein".
var yescryptVectors = []string{
	"$y$jD5.7$LdJMENpBABJJ3hIHjB1Bi.$HboGM6qPrsK.StKYGt6KErmUYtioHreJd98oIugoNB6",
	"$y$jC4$LdJMENpBABJJ3hIHjB1B$jVg4HoqqpbmQv/NCpin.QCMagJ8o4QX7lXdzvVV0xFC",
	"$y$/B3.6$LdJMENpBABJJ3hIHjB1$h8sE4hJo.BsdlfJr0.d8bNJNPZymH7Y3kLj4aY1Rfc8",
	"$y$/A2$LdJMENpBABJJ3hIHj/$5IEld1eWdmh5lylrqHLF5dvA3ISpimEM9J1Dd05n/.3",
	"$y$j91.5$LdJMENpBABJJ3hIH$ebKnn23URD5vyLgF9cP2EvVosrUXf7UErGRV0KmC6e6",
	"$y$j80$LdJMENpBABJJ3h2$ysXVVJwuaVlI1BWoEKt/Bz3WNDDmdOWz/8KTQaHL1cC",
	"$y$/7/.4$LdJMENpBABJJ3/$lXHleh7bIZMGNtJVxGVrsIWkEIXfBedlfPui/PITflC",
	"$y$/6.$LdJMENpBABJJ$zQITmYSih5.CTY47x0IuE4wl.b3HzYGKKCSggakaQ22",
	"$y$j5..3$LdJMENpBAB3$xi27PTUNd8NsChHeLOz85JFnUOyibRHkWzprowRlR5/",
	"$y$j4/$LdJMENpBA/$tHlkpTQ8V/eEnTVau1uW36T97LIXlfPrEzdeV5SE5K7",
	"$y$/3..2$LdJMENpB$tNczXFuNUd3HMqypStCRsEaL4e4KF7ZYLBe8Hbeg0B7",
	"$y$/2/$LdJMEN3$RRorHhfsw1/P/WR6Aurg4U72e9Q7qt9vFPURdyfiqK8",
	"$y$j2..1$LdJME/$iLEt6kuTwHch6XdCxtTHfsQzYwWFmpUwgl6Ax8RH4d1",
	"$y$j0/$LdJM$k7BXzSDuoGHW56SY3HxROCiA0gWRscZe2aA0q5oHPM0",
	"$y$//..0$Ld3$6BJXezMFxaMiO5wsuoEmztvtCs/79085dZO56ADlV5B",
	"$y$///$L/$Rrrkp6OVljrIk0kcwkCDhAiHJiSthh3cKeIGHUW7Z0C",
	"$y$j1../$LdJMENpBABJJ3hIHjB1Bi.$L8OQFc8mxJPd7CpUFgkS7KqJM2I9jGXu3BdqX2D.647",
	"$y$j//$LdJMENpBABJJ3hIHjB1B$U8a2MaK.yesqWySK8Owk6PWeWmp/XuagMbpP45q1/q1",
	"$7$C6..../....SodiumChloride$kBGj9fHznVYFQMEn/qDCfrDevf9YDtcDdKvEqHJLV8D",
	"$7$06..../....SodiumChloride$ENlyo6fGw4PCcDBOFepfSZjFUnVatHzCcW55.ZGz3B0",
}

func TestYescryptReferenceVectors(t *testing.T) {
	t.Parallel()
	for i, v := range yescryptVectors {
		h, err := parseYescrypt(v)
		if err != nil {
			t.Errorf("parse %s: %v", v, err)
			continue
		}
		st := newYescryptState(h, nil)
		start := time.Now()
		ok, err := st.verify([]byte("pleaseletmein"))
		if err != nil || !ok {
			t.Errorf("%s: verify = %v, %v", v, ok, err)
		}
		t.Logf("%s: %v", v[:12], time.Since(start))
		if i < 3 {
			continue // the costly ones: one verification is enough
		}
		ok, err = st.verify([]byte("pleaseletmeim"))
		if err != nil || ok {
			t.Errorf("%s: wrong password verify = %v, %v", v, ok, err)
		}
	}
}

// Every fixture hash verifies its password and rejects others.
func TestHashVectors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ hash, pw string }{
		{sha512Root, "root"}, {sha512Strong, strongPW}, {sha512Ubuntu, "ubuntu"}, {sha256Pass, "password"},
		{md5Changeme, "changeme"}, {bcryptAdmin, "admin"}, {bcryptARoot, "root"}, {yesRoot, "root"},
		{yes123456, "123456"}, {yesStrongR1, strongPW}, {yesQwertyR1, "qwerty"}, {scryptToor, "toor"},
		{scryptTiny, "pleaseletmein"},
	} {
		v, err := newVerifier(tc.hash, nil)
		if err != nil {
			t.Errorf("%s: %v", schemeOf(tc.hash), err)
			continue
		}
		for _, pw := range []string{tc.pw, tc.pw + "x"} {
			ok, err := v.verify([]byte(pw))
			if err != nil || ok != (pw == tc.pw) {
				t.Errorf("%s: verify(%q) = %v, %v", schemeOf(tc.hash), pw, ok, err)
			}
		}
	}
}

// Hashes made at run time by mkpasswd (package whois), when installed.
func TestMkpasswd(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("mkpasswd")
	if err != nil {
		t.Skip("mkpasswd not installed (apt-get install whois); the fixed vectors still run")
	}
	for _, tc := range []struct {
		method, scheme string
		args           []string
	}{
		{"yescrypt", "yescrypt", nil},
		{"yescrypt", "yescrypt", []string{"-R", "1"}},
		{"sha512crypt", "sha512crypt", nil},
		{"sha512crypt", "sha512crypt", []string{"-R", "12345"}},
		{"sha256crypt", "sha256crypt", nil},
		{"md5crypt", "md5crypt", nil},
		{"bcrypt", "bcrypt", []string{"-R", "5"}},
		{"bcrypt-a", "bcrypt", []string{"-R", "5"}},
		{"scrypt", "scrypt", []string{"-R", "6"}},
		{"descrypt", "descrypt (DES)", nil},
		{"gost-yescrypt", "gost-yescrypt", nil},
	} {
		pw := fmt.Sprintf("Pw-%s-%d", tc.method, time.Now().UnixNano()%1000)
		args := append([]string{"-m", tc.method}, tc.args...)
		out, err := exec.Command(bin, append(args, pw)...).Output()
		if err != nil {
			t.Errorf("mkpasswd %v: %v", args, err)
			continue
		}
		h := strings.TrimSpace(string(out))
		if got := schemeOf(h); got != tc.scheme {
			t.Errorf("schemeOf(mkpasswd %v) = %q", args, got)
		}
		v, err := newVerifier(h, nil)
		if tc.scheme == "descrypt (DES)" || tc.scheme == "gost-yescrypt" {
			if !errors.Is(err, errUnsupported) {
				t.Errorf("%s: newVerifier err = %v, want unsupported", tc.method, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %v: %v", tc.method, tc.args, err)
			continue
		}
		start := time.Now()
		ok, err := v.verify([]byte(pw))
		el := time.Since(start)
		if err != nil || !ok {
			t.Errorf("%s %v: right password: %v, %v", tc.method, tc.args, ok, err)
		}
		ok, err = v.verify([]byte(pw[:len(pw)-1]))
		if err != nil || ok {
			t.Errorf("%s %v: wrong password: %v, %v", tc.method, tc.args, ok, err)
		}
		t.Logf("%s %v: one verification %v", tc.method, tc.args, el)
	}
}
