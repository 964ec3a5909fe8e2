package keyslot

import "testing"

func TestSlot(t *testing.T) {
	// Expected slots from CLUSTER KEYSLOT on Redis 7.0 (and the Redis
	// Cluster specification: CRC16 of "123456789" is 0x31C3).
	tests := []struct {
		key  string
		tag  string
		slot int
	}{
		{"123456789", "123456789", 0x31C3},
		{"foo", "foo", 12182},
		{"{user1000}.following", "user1000", 3443},
		{"{user1000}.followers", "user1000", 3443},
		{"foo{}{bar}", "foo{}{bar}", 8363},
		{"foo{{bar}}zap", "{bar", 4015},
		{"foo{bar}{zap}", "bar", 5061},
		{"{bar", "{bar", Slot("{bar")},
		{"", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := Tag(tt.key); got != tt.tag {
				t.Errorf("Tag(%q) = %q, want %q", tt.key, got, tt.tag)
			}
			if got := Slot(tt.key); got != tt.slot {
				t.Errorf("Slot(%q) = %d, want %d", tt.key, got, tt.slot)
			}
		})
	}
}

func TestSame(t *testing.T) {
	tests := []struct {
		keys []string
		want bool
	}{
		{nil, true},
		{[]string{"a"}, true},
		{[]string{"{x}:a", "{x}:b", "p:{x}:c"}, true},
		{[]string{"x:a", "x:b"}, false},
	}
	for _, tt := range tests {
		if got := Same(tt.keys...); got != tt.want {
			t.Errorf("Same(%q) = %v, want %v", tt.keys, got, tt.want)
		}
	}
}
