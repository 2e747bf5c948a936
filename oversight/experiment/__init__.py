"""One experiment: its config schema, the run (base model -> protocol -> PPO -> evaluation ->
store), and the evaluation harness."""
