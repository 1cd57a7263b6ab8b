package storage

import "testing"

func TestPhoneticKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Smith", "SMIT"}, {"SMYTH", "SMIT"}, {"Smythe", "SMIT"},
		{"Meier", "MEIR"}, {"Meyer", "MEIR"}, {"Maier", "MEIR"}, {"Mayer", "MEIR"},
		{"Schmidt", "SCHMIT"}, {"Schmitt", "SCHMIT"},
		{"Carl", "KARL"}, {"Karl", "KARL"}, {"Cecil", "SESIL"},
		{"John", "JOHN"}, {"Jane", "JAN"}, {"Jon", "JON"},
		{"Müller", "MULER"}, {"Mueller", "MUELER"}, {"Strauß", "STRAUS"},
		{"Philipp", "FILIP"}, {"Doe", "DO"}, {"Jo", "JO"}, {"Ee", "E"},
		{"O'Brien", "OBRIN"}, {"李", ""}, {"", ""},
	} {
		if got := PhoneticKey(c.in); got != c.want {
			t.Errorf("PhoneticKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestPhoneticKeys(t *testing.T) {
	if got := PhoneticKeys("Smith^Smythe=SMYTH^Li"); len(got) != 2 || got[0] != "SMIT" || got[1] != "LI" {
		t.Errorf("PhoneticKeys = %q, want [SMIT LI]", got)
	}
	if got := PhoneticKeys("李^"); len(got) != 0 {
		t.Errorf("PhoneticKeys(no letters) = %q, want none", got)
	}
}
