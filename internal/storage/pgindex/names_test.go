package pgindex

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

func TestLikePattern(t *testing.T) {
	for in, want := range map[string]string{`DOE*`: `DOE%`, `J?HN`: `J_HN`, `50%_\`: `50\%\_\\`, `*[x]`: `%[x]`} {
		if got := likePattern(in); got != want {
			t.Errorf("likePattern(%q) = %q, want %q", in, got, want)
		}
	}
}
