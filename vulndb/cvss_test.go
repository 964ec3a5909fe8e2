package vulndb

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// cvss3BaseScore computes a CVSS v3.0/v3.1 base score from a vector
// ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), per the FIRST CVSS v3.1
// specification, section 7.1 and Appendix A (Roundup). v3.0 has the same
// base formula; only its Roundup lacks v3.1's floating-point care.
func cvss3BaseScore(vector string) (float64, error) {
	m, err := parseVector(vector, "CVSS:3.", []string{"AV", "AC", "PR", "UI", "S", "C", "I", "A"})
	if err != nil {
		return 0, err
	}
	weights := map[string]map[string]float64{
		"AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
		"AC": {"L": 0.77, "H": 0.44},
		"UI": {"N": 0.85, "R": 0.62},
		"C":  {"H": 0.56, "L": 0.22, "N": 0},
		"I":  {"H": 0.56, "L": 0.22, "N": 0},
		"A":  {"H": 0.56, "L": 0.22, "N": 0},
	}
	changed := m["S"] == "C"
	if m["S"] != "U" && m["S"] != "C" {
		return 0, fmt.Errorf("bad S:%s", m["S"])
	}
	prW := map[string]float64{"N": 0.85, "L": 0.62, "H": 0.27}
	if changed {
		prW = map[string]float64{"N": 0.85, "L": 0.68, "H": 0.5}
	}
	weights["PR"] = prW
	w := map[string]float64{}
	for metric, table := range weights {
		v, ok := table[m[metric]]
		if !ok {
			return 0, fmt.Errorf("bad %s:%s", metric, m[metric])
		}
		w[metric] = v
	}

	iss := 1 - (1-w["C"])*(1-w["I"])*(1-w["A"])
	var impact float64
	if changed {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
	} else {
		impact = 6.42 * iss
	}
	exploitability := 8.22 * w["AV"] * w["AC"] * w["PR"] * w["UI"]
	if impact <= 0 {
		return 0, nil
	}
	if changed {
		return roundup(math.Min(1.08*(impact+exploitability), 10)), nil
	}
	return roundup(math.Min(impact+exploitability, 10)), nil
}

// roundup is CVSS v3.1 Appendix A: the smallest number, to one decimal,
// equal to or higher than its input.
func roundup(x float64) float64 {
	i := int64(math.Round(x * 100000))
	if i%10000 == 0 {
		return float64(i) / 100000
	}
	return (math.Floor(float64(i)/10000) + 1) / 10
}

// cvss2BaseScore computes a CVSS v2 base score ("AV:N/AC:L/Au:N/C:P/I:P/A:P")
// per the CVSS v2 guide, section 3.2.1.
func cvss2BaseScore(vector string) (float64, error) {
	m, err := parseVector(vector, "", []string{"AV", "AC", "Au", "C", "I", "A"})
	if err != nil {
		return 0, err
	}
	weights := map[string]map[string]float64{
		"AV": {"L": 0.395, "A": 0.646, "N": 1.0},
		"AC": {"H": 0.35, "M": 0.61, "L": 0.71},
		"Au": {"M": 0.45, "S": 0.56, "N": 0.704},
		"C":  {"N": 0, "P": 0.275, "C": 0.660},
		"I":  {"N": 0, "P": 0.275, "C": 0.660},
		"A":  {"N": 0, "P": 0.275, "C": 0.660},
	}
	w := map[string]float64{}
	for metric, table := range weights {
		v, ok := table[m[metric]]
		if !ok {
			return 0, fmt.Errorf("bad %s:%s", metric, m[metric])
		}
		w[metric] = v
	}
	impact := 10.41 * (1 - (1-w["C"])*(1-w["I"])*(1-w["A"]))
	exploitability := 20 * w["AV"] * w["AC"] * w["Au"]
	f := 1.176
	if impact == 0 {
		f = 0
	}
	return math.Round(((0.6*impact)+(0.4*exploitability)-1.5)*f*10) / 10, nil
}

// parseVector splits "PREFIX/K:V/K:V" and checks that exactly the wanted
// base metrics are present.
func parseVector(vector, prefix string, want []string) (map[string]string, error) {
	parts := strings.Split(vector, "/")
	if prefix != "" {
		if !strings.HasPrefix(parts[0], prefix) {
			return nil, fmt.Errorf("%q: want prefix %s", vector, prefix)
		}
		parts = parts[1:]
	}
	m := map[string]string{}
	for _, p := range parts {
		k, v, ok := strings.Cut(p, ":")
		if !ok {
			return nil, fmt.Errorf("%q: bad metric %q", vector, p)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%q: duplicate metric %s", vector, k)
		}
		m[k] = v
	}
	if len(m) != len(want) {
		return nil, fmt.Errorf("%q: want exactly the base metrics %v", vector, want)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			return nil, fmt.Errorf("%q: missing %s", vector, k)
		}
	}
	return m, nil
}

// TestCVSSCalculator pins the calculator to scores published by FIRST/NVD.
func TestCVSSCalculator(t *testing.T) {
	v3 := map[string]float64{
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H": 10.0,
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H": 9.8,
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:H": 9.1,
		"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H": 7.8,
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H": 7.5,
		"CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N": 6.1,
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L": 5.3,
		"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:L/A:N": 3.7,
		"CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N": 6.4,
		"CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N": 0,
	}
	for vec, want := range v3 {
		got, err := cvss3BaseScore(vec)
		if err != nil || got != want {
			t.Errorf("cvss3BaseScore(%s) = %v, %v; want %v", vec, got, err, want)
		}
	}
	v2 := map[string]float64{
		"AV:N/AC:L/Au:N/C:P/I:P/A:P": 7.5,
		"AV:N/AC:L/Au:N/C:C/I:C/A:C": 10.0,
		"AV:N/AC:M/Au:N/C:N/I:P/A:N": 4.3,
		"AV:N/AC:L/Au:N/C:N/I:N/A:P": 5.0,
	}
	for vec, want := range v2 {
		got, err := cvss2BaseScore(vec)
		if err != nil || got != want {
			t.Errorf("cvss2BaseScore(%s) = %v, %v; want %v", vec, got, err, want)
		}
	}
	for _, bad := range []string{"AV:N/AC:L", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H"} {
		if _, err := cvss3BaseScore(bad); err == nil {
			t.Errorf("cvss3BaseScore(%s): no error", bad)
		}
	}
}
