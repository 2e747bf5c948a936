"""The RL engine every protocol shares: the PPO core, its packed forward pass and sampler, the CPU
attention kernel, and gradient averaging across processes."""
