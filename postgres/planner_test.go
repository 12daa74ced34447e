package postgres

import "testing"

// TestPlannerParamsSetUnlessTheDSNSaysOtherwise: every Store connection
// plans with plannerParams (JIT off among them), and a setting written in
// the DSN wins.
func TestPlannerParamsSetUnlessTheDSNSaysOtherwise(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig("postgres://u@127.0.0.1:5432/x?sslmode=disable", options{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range plannerParams {
		if got := cfg.ConnConfig.RuntimeParams[k]; got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := cfg.ConnConfig.RuntimeParams["jit"]; got != "off" {
		t.Errorf("jit = %q, want off", got)
	}
	cfg, err = parseConfig("postgres://u@127.0.0.1:5432/x?sslmode=disable&jit=on", options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ConnConfig.RuntimeParams["jit"]; got != "on" {
		t.Errorf("jit written in the DSN: %q, want on", got)
	}
}
