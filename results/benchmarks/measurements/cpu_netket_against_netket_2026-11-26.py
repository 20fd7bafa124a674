"""Control: NetKet's VMC_SR against itself (on-the-fly vs stored-Jacobian kernel; the same update to
round-off), one seed, 4x4 t5 d=8: do the two trajectories stay together?"""
import numpy as np, netket as nk
from vitnqs import build_system
from vitnqs.config import RunConfig
from vitnqs.train import build_driver, build_variational_state
config = RunConfig.from_dict(dict(L=4, J2=0.5, n_layers=1, attention="t5", d_model=8, n_heads=2,
                                  n_samples=256, n_chains=16, n_discard_per_chain=2, n_steps=100))
system = build_system(4, 0.5)
out = {}
for otf in (True, False):
    vs = build_variational_state(config, system)
    d = build_driver(config, system.hamiltonian, vs, otf, nk.driver.VMC_SR)
    log = []
    d.run(81, out=None, show_progress=False,
          callback=lambda s, l, dr: log.append((float(np.real(dr._loss_stats.mean)), float(dr._loss_stats.error_of_mean))) or True)
    out[otf] = np.array(log) / 64
for s in range(0, 81, 20):
    a, b = out[True][s], out[False][s]
    print(s, a, b, abs(a[0] - b[0]) / np.hypot(a[1], b[1]))
