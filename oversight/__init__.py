"""Scalable-oversight experiment platform: task -> policy -> protocol -> PPO -> evaluation -> store."""
