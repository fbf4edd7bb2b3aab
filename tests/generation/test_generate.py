import json

import h5py
import numpy as np
import pytest
from conftest import FIXTURE_JETS

from seal.generation.chunks import run_chunks
from seal.generation.jets import GeneratorConfig, chunk_seed, generate, jet_chunk, top_partons

TINY = dict(
    n_signal=6,
    n_background=6,
    pt_min=400.0,
    pt_max=600.0,
    n_slices=1,
    chunk_jets=3,
    n_constituents=150,
    seed=3,
)


def read_all(path):
    with h5py.File(path) as f:
        return {k: f[k][:] for k in f if k != "metadata"}


def test_generation_is_deterministic_and_resumes_without_redoing_chunks(tmp_path):
    cfg = GeneratorConfig(**TINY)
    fresh = generate(cfg, tmp_path / "fresh.h5", processes=2)
    assert fresh["made"] == 12

    # an interrupted run: chunk 0 finished before the stop
    chunk_dir = tmp_path / "resumed.h5.chunks"
    chunk_dir.mkdir()
    run_chunks(jet_chunk, [(chunk_dir / "chunk_00000.npz", (cfg, cfg.chunks()[0]))], "one chunk")
    resumed = generate(cfg, tmp_path / "resumed.h5", processes=2)
    assert resumed["made"] == 9  # only the three missing chunks ran
    assert not chunk_dir.exists()  # merged, then cleaned up

    a, b = read_all(tmp_path / "fresh.h5"), read_all(tmp_path / "resumed.h5")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert a["labels"].sum() == 6 and a["fjet_clus_pt"].shape == (12, 150)
    pt = a["fjet_pt"] / 1e3
    assert ((pt >= 400) & (pt < 600)).all()
    # constituents are pT-ordered and zero-padded
    clus = a["fjet_clus_pt"]
    assert (np.diff(clus, axis=1) <= 0).all() and (clus[:, -1] == 0).any()


def test_chunks_fill_slices_evenly():
    cfg = GeneratorConfig(n_signal=1000, n_background=500, n_slices=4, chunk_jets=100)
    chunks = cfg.chunks()
    per = {}
    for process, s, jets, _ in chunks:
        per[(process, s)] = per.get((process, s), 0) + jets
    assert [per[("ttbar", s)] for s in range(4)] == [250] * 4
    assert [per[("qcd", s)] for s in range(4)] == [125] * 4
    assert cfg.slice_edges(1) == (550.0, 700.0)


def test_top_partons_follows_the_decay_chain():
    # 0 beam, 1 t (copy → 2), 2 t (→ 3 W, 4 b), 3 W (copy → 5), 5 W (→ 6 u, 7 d̄)
    ids = np.array([2212, 6, 6, 24, 5, 24, 2, -1])
    d1 = np.array([0, 2, 3, 5, 0, 6, 0, 0])
    d2 = np.array([0, 2, 4, 5, 0, 7, 0, 0])
    p = np.arange(32, dtype=float).reshape(8, 4)
    ((partons,),) = top_partons(ids, d1, d2, p)  # one event, one top
    np.testing.assert_array_equal(partons, p[[2, 4, 6, 7]])
    # two events in a row (indices within each event): the second event's top is found too,
    # a top whose W has three quark daughters is not
    ids2, d12, d22 = (
        np.array([2212, -6, 5, -24, 1, -2, 3]),
        np.array([0, 2, 0, 4, 0, 0, 0]),
        np.array([0, 3, 0, 6, 0, 0, 0]),
    )
    p2 = -np.arange(28, dtype=float).reshape(7, 4)
    both = top_partons(np.r_[ids, ids2], np.r_[d1, d12], np.r_[d2, d22], np.r_[p, p2], [8, 7])
    assert both.shape == (2, 1, 4, 4)
    np.testing.assert_array_equal(both[0, 0], p[[2, 4, 6, 7]])
    assert np.isnan(both[1]).all()  # -24 → 1, -2, 3: three quarks, not a hadronic W pair
    d22[3] = 5  # now the W decays to 1, -2 only
    both = top_partons(np.r_[ids, ids2], np.r_[d1, d12], np.r_[d2, d22], np.r_[p, p2], [8, 7])
    np.testing.assert_array_equal(both[1, 0], p2[[1, 2, 4, 5]])


def test_bad_generator_settings():
    with pytest.raises(ValueError, match="need 0 < pt_min < pt_max"):
        GeneratorConfig(pt_min=500, pt_max=400)
    with pytest.raises(ValueError, match=r"eta_max \(the \|η\| cut\) must be > 0; got 0"):
        GeneratorConfig(eta_max=0)
    GeneratorConfig(radius=0.2)  # small jets are fine without trimming
    with pytest.raises(ValueError, match="trimming needs 0 < trim_radius < radius"):
        GeneratorConfig(radius=0.2, trim=True)


def test_a_resume_with_other_settings_or_a_damaged_chunk_is_named(tmp_path):
    cfg = GeneratorConfig(**TINY)
    chunk_dir = tmp_path / "jets.h5.chunks"
    chunk_dir.mkdir()
    run_chunks(jet_chunk, [(chunk_dir / "chunk_00000.npz", (cfg, cfg.chunks()[0]))], "one")
    from seal.generation.chunks import check_resume

    check_resume(chunk_dir, {**cfg.__dict__, "accept": "slice"})  # records the settings
    with pytest.raises(ValueError, match=r"other settings \(accept: 'slice' → 'window'\)"):
        generate(GeneratorConfig(**TINY, accept="window"), tmp_path / "jets.h5")
    # a chunk whose data went bad on disk (its directory intact): named at the merge, removed
    generate(cfg, tmp_path / "first.h5", processes=2)
    bad_dir = tmp_path / "bad.h5.chunks"
    bad_dir.mkdir()
    tasks = [(bad_dir / f"chunk_{c[3]:05d}.npz", (cfg, c)) for c in cfg.chunks()]
    run_chunks(jet_chunk, tasks, "chunks", processes=2)
    damaged = bytearray(tasks[2][0].read_bytes())
    damaged[200] ^= 0xFF  # a flipped byte inside the first record
    tasks[2][0].write_bytes(bytes(damaged))
    with pytest.raises(RuntimeError, match=rf"chunk {tasks[2][0]} is damaged .* run the same"):
        generate(cfg, tmp_path / "bad.h5", processes=2)
    assert not tasks[2][0].exists()
    again = generate(cfg, tmp_path / "bad.h5", processes=2)  # made anew, then merged
    assert again["made"] == 3
    a, b = read_all(tmp_path / "first.h5"), read_all(tmp_path / "bad.h5")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--pt-min", "800", "--pt-max", "600"], "need 0 < pt_min < pt_max; got 800.0, 600.0"),
        (["--eta-max", "-1"], "eta_max (the |η| cut) must be > 0; got -1.0"),
        (["--chunks-per-job", "0"], "--chunks-per-job must be >= 1; got 0"),
    ],
)
def test_the_generator_command_names_bad_settings_before_any_work(tmp_path, args, message):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "generate_jets.py"
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path / "j.h5"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and message in done.stderr
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(blocker / "j.h5")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert f"cannot write the output {blocker}/j.h5: {blocker} is a file" in done.stderr
    assert not list(tmp_path.glob("*.chunks"))  # nothing was started


def test_chunk_seeds_stay_in_pythias_range_and_differ():
    seeds = [chunk_seed(s, i) for s in (0, 12345, 10**12) for i in range(50)]
    assert all(1 <= x <= 900_000_000 for x in seeds) and len(set(seeds)) == len(seeds)


def test_datamodule_generates_a_missing_file_once_with_the_detector(tmp_path):
    from seal.data.jet_datamodule import JetDataModule

    path = tmp_path / "sub" / "default.h5"
    settings = {**TINY, "n_signal": 3, "n_background": 3, "detector": True}
    module = JetDataModule(
        path, n_constituents=40, split=(0.5, 0.5, 0.0), batch_size=4, generate=settings
    )
    module.prepare_data()
    assert path.exists()
    stamp = path.stat().st_mtime_ns
    module.prepare_data()  # reused, not regenerated
    assert path.stat().st_mtime_ns == stamp
    module.setup()
    batch = next(iter(module.train_dataloader()))
    # calorimeter cells are massless
    p4 = batch["p4"][batch["mask"]].double()
    m2 = p4[:, 0] ** 2 - (p4[:, 1:] ** 2).sum(-1)
    assert (m2.abs() < 1e-3 * p4[:, 0] ** 2).all()


def test_chunks_run_as_a_submitit_job_array_and_merge_into_the_same_file(tmp_path):
    import time

    import submitit

    cfg = GeneratorConfig(**TINY)
    reference = generate(cfg, tmp_path / "pool.h5", processes=2)
    assert reference["made"] == 12
    # submit the 4 chunks as 2 local jobs and return at once (the cluster workflow)
    executor = submitit.AutoExecutor(folder=tmp_path / "jobs" / "%j", cluster="local")
    executor.update_parameters(timeout_min=5)
    out = tmp_path / "jobs.h5"
    assert generate(cfg, out, executor=executor, chunks_per_job=2, wait=False) is None
    # run again at once: the chunks on their way are not submitted a second time
    assert generate(cfg, out, executor=executor, chunks_per_job=2, wait=False) is None
    chunks = tmp_path / "jobs.h5.chunks"
    deadline = time.monotonic() + 120
    while len(list(chunks.glob("chunk_*[0-9].npz"))) < 4:
        assert time.monotonic() < deadline, "the submitted jobs did not write their chunks"
        time.sleep(0.5)
    job_folders = [p for p in (tmp_path / "jobs").iterdir() if p.name.isdigit()]
    assert len(job_folders) == 2  # 2 jobs in all, not 4
    assert not out.exists()  # nothing merged before every chunk is there
    # the same command once the jobs are done: nothing left to make, only the merge
    merged = generate(cfg, out, executor=executor, chunks_per_job=2, wait=False)
    assert merged["made"] == 0 and not chunks.exists()
    a, b = read_all(tmp_path / "pool.h5"), read_all(out)
    for key in a:  # the same chunks, seeds and merge whatever ran them
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_the_merge_is_streamed_in_blocks_and_a_corrupt_chunk_is_made_again(tmp_path, capsys):
    from seal.generation.atlas import write_atlas

    cfg = GeneratorConfig(**TINY)
    chunk_dir = tmp_path / "jets.h5.chunks"
    chunk_dir.mkdir()
    tasks = [(chunk_dir / f"chunk_{c[3]:05d}.npz", (cfg, c)) for c in cfg.chunks()]
    run_chunks(jet_chunk, tasks, "chunks", processes=2)
    paths = [p for p, _ in tasks]
    write_atlas(tmp_path / "whole.h5", paths, cfg)  # one block holds the 12 jets
    write_atlas(tmp_path / "blocks.h5", paths, cfg, block_rows=5)  # 3 blocks of ≤ 5 rows
    a, b = read_all(tmp_path / "whole.h5"), read_all(tmp_path / "blocks.h5")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not list(tmp_path.glob(".blocks.h5.*"))  # the scratch files are gone
    # a chunk cut short on disk is named, removed and made again, never merged
    good = paths[1].read_bytes()
    paths[1].write_bytes(good[: len(good) // 2])
    made = run_chunks(jet_chunk, tasks, "chunks", processes=1)
    assert made["made"] == 3 and paths[1].read_bytes() == good  # the same seed: the same chunk
    assert f"{paths[1]}: not a readable archive" in capsys.readouterr().err


def test_the_generator_reproduces_the_committed_fixture_bit_for_bit(tmp_path):
    # the fixture was written by the event-by-event generator; the array-level one (whole
    # batches of events, vectorised selection and truth matching) must give the same jets:
    # the same top mass peak, QCD mass spectrum and everything else. The settings are the ones
    # the fixture records (`make fixture`: 150 + 150 jets, 400–800 GeV, 2 slices, seed 7)
    with h5py.File(FIXTURE_JETS) as f:
        settings = json.loads(f["metadata"].attrs["settings"])
    assert (settings["n_signal"], settings["pt_max"], settings["seed"]) == (150, 800.0, 7)
    generate(GeneratorConfig(**settings), tmp_path / "again.h5", processes=2)
    a, b = read_all(FIXTURE_JETS), read_all(tmp_path / "again.h5")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _four_vectors(rows):
    import awkward as ak

    return ak.zip(
        {
            f: ak.Array([[p[i] for p in event] for event in rows])
            for i, f in enumerate(("px", "py", "pz", "E"))
        }
    )


def test_trimming_drops_soft_subjets_and_keeps_the_hard_ones():
    import awkward as ak

    from seal.generation.jets import trimmed

    cfg = GeneratorConfig(trim=True)  # R_sub 0.2, f_cut 0.05
    hard = [[300.0, 0.0, 0.0, 300.0], [280.0, 30.0, 0.0, 281.6], [200.0, -5.0, 0.0, 200.1]]
    soft_far = [10.0, 5.0, 6.0, 12.7]  # 2 % of the jet's pT, ΔR ≈ 0.5 from the core: dropped
    hard_far = [60.0, 30.0, 40.0, 78.1]  # 7.5 % of the jet's pT, its own subjet: kept
    constituents = [[[*hard, soft_far], [*hard, hard_far]]]  # one event, two jets
    cons = ak.Array([[_four_vectors([jet])[0] for jet in constituents[0]]])
    jets = ak.zip({f: ak.sum(cons[f], axis=2) for f in ("px", "py", "pz", "E")})
    trimmed_jets, trimmed = trimmed(jets, cons, cfg)
    assert ak.num(trimmed, axis=2).tolist() == [[3, 4]]
    np.testing.assert_allclose(float(trimmed_jets.px[0, 0]), 780.0)  # the soft one is gone
    np.testing.assert_allclose(float(trimmed_jets.px[0, 1]), 840.0)


def test_pileup_overlays_poisson_many_minimum_bias_events_on_each_event():
    import awkward as ak

    from seal.generation.jets import minimum_bias, overlay, visible

    cfg = GeneratorConfig(pileup_mu=3.0)
    empty = _four_vectors([[], [], [], []])  # four hard events without particles
    out = overlay(empty, minimum_bias(cfg, seed=5), 3.0, np.random.default_rng(0))
    counts = np.random.default_rng(0).poisson(3.0, 4)  # the same draw: the same pile-up
    extra = ak.num(visible(minimum_bias(cfg, seed=5).nextBatch(int(counts.sum()))))
    groups = np.split(ak.to_numpy(extra), np.cumsum(counts)[:-1])
    assert ak.num(out).tolist() == [int(g.sum()) for g in groups] and sum(counts) > 0


def test_trimmed_jets_with_pileup_are_recorded_in_the_file(tmp_path):
    import json

    cfg = GeneratorConfig(
        **{**TINY, "n_signal": 3, "n_background": 3, "trim": True, "pileup_mu": 1.0}
    )
    generate(cfg, tmp_path / "atlas_like.h5", processes=2)
    with h5py.File(tmp_path / "atlas_like.h5") as f:
        settings = json.loads(f["metadata"].attrs["settings"])
        assert settings["trim"] is True and settings["trim_fcut"] == 0.05
        assert settings["pileup_mu"] == 1.0 and len(f["labels"]) == 6


def test_window_acceptance_keeps_every_jet_of_the_whole_window():
    from seal.generation.jets import generate_chunk

    common = dict(n_slices=4, pt_min=400.0, pt_max=800.0, n_constituents=60)
    per_event = {}
    for accept in ("slice", "window"):
        cfg = GeneratorConfig(**common, accept=accept)
        out = generate_chunk(cfg, "qcd", 2, 40, seed=4)  # slice 2: 600–700 GeV
        pt = np.hypot(out["jet"][:, 0], out["jet"][:, 1])
        lo, hi = (600.0, 700.0) if accept == "slice" else (400.0, 800.0)
        assert ((pt >= lo) & (pt < hi)).all()
        per_event[accept] = 40 / out["events"]
        if accept == "window":
            assert ((pt < 600) | (pt >= 700)).any()  # jets outside the slice are kept too
    assert per_event["window"] > 2 * per_event["slice"]
    with pytest.raises(ValueError, match="accept must be 'slice' or 'window'"):
        GeneratorConfig(accept="all")


def test_ctrl_c_while_waiting_for_jobs_cancels_them_and_says_how_to_resume(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "generate_jets.py"
    out = tmp_path / "j.h5"
    args = [
        "--out",
        str(out),
        "--n-signal",
        "4000",
        "--n-background",
        "0",
        "--n-slices",
        "1",
        "--chunk-jets",
        "2000",
        "--executor",
        "local",
    ]
    process = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    jobs = tmp_path / "j.h5.jobs"
    deadline = time.monotonic() + 120
    while not list(jobs.glob("*/*_submitted.pkl")):  # the job array is out
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "unfinished jobs cancelled" in stderr and "Run the same command again" in stderr
    assert not out.exists()
    # no traceback of ours: the only ones are those submitit's local controllers print when
    # cancelled (submitit sends them SIGINT; two of them may interleave their lines)
    assert "seal/data/" not in stderr and 'generate_jets.py", line' not in stderr, stderr


def test_every_jet_carries_its_event_number_shared_by_the_jets_of_one_event():
    from seal.data.atlas_layout import EVENT_NUMBER
    from seal.generation.jets import event_numbers

    assert event_numbers(3, np.array([0, 7])).tolist() == [3 * 2**32, 3 * 2**32 + 7]
    with h5py.File(FIXTURE_JETS) as f:
        number, labels = f[EVENT_NUMBER][:], f["labels"][:]
        chunks = len(GeneratorConfig(**json.loads(f["metadata"].attrs["settings"])).chunks())
    assert number.dtype == np.int64 and set(np.unique(number >> 32)) <= set(range(chunks))
    values, counts = np.unique(number, return_counts=True)
    assert counts.max() == 2 and (counts == 2).sum() > 10  # the two leading jets of an event
    for shared in values[counts == 2]:
        assert len(set(labels[number == shared])) == 1  # one event, one process


def test_shower_weights_are_stored_per_jet_with_their_names(tmp_path):
    from seal.data.atlas_layout import EVENT_NUMBER, EVENT_WEIGHTS
    from seal.generation.jets import SHOWER_WEIGHTS

    generate(GeneratorConfig(**TINY, shower_weights=True), tmp_path / "w.h5", processes=1)
    with h5py.File(tmp_path / "w.h5") as f:
        weights, numbers = f[EVENT_WEIGHTS][:], f[EVENT_NUMBER][:]
        names = json.loads(f["metadata"].attrs["mc_weight_names"])
        assert json.loads(f["metadata"].attrs["settings"])["shower_weights"] is True
    assert (
        names
        == ["baseline", "isr_up", "isr_down", "fsr_up", "fsr_down"]
        == [
            "baseline",
            *SHOWER_WEIGHTS,
        ]
    )
    assert weights.shape == (12, 5) and weights.dtype == np.float32
    np.testing.assert_array_equal(weights[:, 0], 1.0)  # Pythia's events are unweighted
    assert np.isfinite(weights).all() and (weights > 0).all() and (weights[:, 1:] != 1).any()
    for number in np.unique(numbers):  # the jets of one event share its weights
        assert len(np.unique(weights[numbers == number], axis=0)) == 1
