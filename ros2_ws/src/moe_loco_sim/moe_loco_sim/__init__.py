"""Simulated Go2 (MuJoCo) for sim-to-sim and training.

- :mod:`moe_loco_sim.go2_model`: the Go2 built in code from ``reference/go2_facts.md``
  (:func:`~moe_loco_sim.go2_model.add_go2`), the contact presets ``cheap`` and ``menagerie``, and
  :class:`~moe_loco_sim.go2_model.Go2Indices`, the SDK-order map to qpos/qvel/ctrl/sensors by name.
- :mod:`moe_loco_sim.terrain`: the paper's Table II runway and 30 m single-task tracks from geoms,
  each with a description (segments, gait per section, spawn, target) for the benchmark.
- :mod:`moe_loco_sim.scene`: a Go2 on a terrain, compiled (:func:`~moe_loco_sim.scene.build_scene`).
"""
