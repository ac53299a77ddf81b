package memlimit

import "testing"

func TestParse(t *testing.T) {
	f := func(in string, want int64, ok bool) {
		t.Helper()
		got, err := Parse(in)
		if (err == nil) != ok || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d (ok %v)", in, got, err, want, ok)
		}
	}
	f("off", 0, true)
	f("1536MiB", 1536<<20, true)
	f("2GiB", 2<<30, true)
	f("1024", 1024, true)
	f("10KiB", 10<<10, true)
	f("", 0, false)
	f("1.5GiB", 0, false)
	f("-1", 0, false)
	f("2GB", 0, false)
	f("9999999TiB", 0, false)
}

func TestChoose(t *testing.T) {
	noCgroup := func() (int64, bool) { return 0, false }
	cgroup := func() (int64, bool) { return 1000, true }
	f := func(value, env string, cg func() (int64, bool), def, want int64, src Source) {
		t.Helper()
		got, s, err := choose(value, env, cg, def)
		if err != nil || got != want || s != src {
			t.Errorf("choose(%q, %q, def %d) = %d, %s, %v; want %d, %s", value, env, def, got, s, err, want, src)
		}
	}
	f("1GiB", "2GiB", cgroup, 5, 1<<30, FromFlag) // the flag wins
	f("", "2GiB", cgroup, 5, 2<<30, FromEnv)      // then the environment
	f("", "", cgroup, 0, 900, FromCgroup)         // then 90% of the container
	f("", "", cgroup, 5, 5, FromDefault)          // or the role's default, if lower
	f("", "", cgroup, 5000, 900, FromCgroup)
	f("", "", noCgroup, 5, 5, FromDefault)
	f("", "", noCgroup, 0, 0, None)
	f("off", "", cgroup, 5, 0, FromFlag)
	if _, _, err := choose("lots", "", noCgroup, 0); err == nil {
		t.Error("a bad flag value was taken")
	}
}
