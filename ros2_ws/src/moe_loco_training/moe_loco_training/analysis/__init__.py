"""The paper's analyses as tools (``moe-loco-analyze``, issue 15).

- ``gradient_conflict``: per-task gradients of the PPO surrogate from the trainer's own rollouts,
  their pairwise cosine similarity and negative-entry ratio (Tables III and IV);
  ``conflict_tables`` writes them as Markdown and CSV.
- ``gate_samples``: the gate weights of a policy file along benchmark trials (the controller core
  in lockstep with the simulated Go2); ``expert_usage`` (Fig. 7) and ``gate_tsne`` (Fig. 8)
  summarise them.
- ``checkpoints``: a training checkpoint back into a
  :class:`~moe_loco_training.train.runner.Trainer`.
- ``cli``: the command.
"""
