"""The paper's simulation benchmark (Section IV-B): ``moe-loco-benchmark POLICY``.

:mod:`.runner` drives a policy file through the controller core on the simulator's tracks (the
mixed runway of Table II and the 30 m single-task tracks) with a scripted operator, and prints
Table I's metrics; :mod:`.baselines` writes scripted yardstick policies.
"""
