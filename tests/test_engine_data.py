"""Datasets: canonical bytes and digests (bundled and uploaded), decoding, held-out split, batch order."""

import hashlib
import io
import json

import numpy as np
import pytest
import torch

from protocol.blobstore import LocalBlobStore
from protocol.engine.data import (
    Batches,
    DatasetDigestMismatch,
    DatasetError,
    DatasetMissing,
    builtin_bytes,
    builtin_digest,
    decode,
    load_dataset,
    sha256_hex,
)
from protocol.engine.examples import EXAMPLES, example_data_path, example_path, load_example
from protocol.repro import KERNEL_SET_VERSION
from protocol.spec import DatasetRef, parse_spec

DIGITS = "0x6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8"
ALICE = "0x7467306ee0feed4971260f3c87421154a05be571d944e9cb021a5713700c38f0"


def _spec(dataset: dict, model: dict | None = None, **kw) -> object:
    doc = {
        "model": model or {"kind": "mlp", "input_dim": 3, "hidden": [4], "num_classes": 3},
        "dataset": dataset,
        "optimizer": {"kind": "sgd", "lr": 0.1},
        "batch_size": kw.pop("batch_size", 4),
        "total_steps": 10,
        "checkpoint_interval": 5,
        "seed": kw.pop("seed", 3),
        "mode": {"kind": "exact", "kernel_set": KERNEL_SET_VERSION},
    }
    doc.update(kw)
    return parse_spec(doc)


def test_bundled_datasets_have_the_documented_digests():
    assert builtin_digest("digits") == DIGITS
    assert builtin_digest("alice") == ALICE
    assert sha256_hex(builtin_bytes("digits")) == DIGITS
    ds = load_dataset(DatasetRef(format="builtin", builtin="digits", digest=DIGITS))
    assert ds.x.shape == (1797, 64) and ds.x.dtype == torch.float32
    assert float(ds.x.max()) == 1.0 and float(ds.x.min()) == 0.0
    assert sorted(set(ds.y.tolist())) == list(range(10))
    text = load_dataset(DatasetRef(format="builtin", builtin="alice", digest=ALICE))
    assert len(text.vocab) == 74 and text.tokens.numel() == 152089


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_example_spec_validates_and_names_the_shipped_data(name):
    spec = load_example(name)
    data = example_data_path(name)
    if data is None:
        assert spec.dataset.format == "builtin"
        assert spec.dataset.digest == builtin_digest(spec.dataset.builtin)
    else:  # an example that ships its data file (examples/data/)
        assert spec.dataset.digest == "0x" + hashlib.sha256(data.read_bytes()).hexdigest()
    load_dataset(spec.dataset, path=data)  # raises on a mismatch
    assert spec.mode.kind == "exact"
    assert spec.mode.kernel_set == KERNEL_SET_VERSION, f"update examples/{name}.json to the current kernel set"
    # the file is the canonical JSON-ish document a user would edit: plain JSON, valid
    assert json.loads(example_path(name).read_text())["model"]["kind"] == spec.model.kind


def test_builtin_digest_mismatch_is_a_clear_error():
    with pytest.raises(DatasetDigestMismatch, match=r"digest mismatch.*builtin 'digits'.*" + DIGITS):
        load_dataset(DatasetRef(format="builtin", builtin="digits", digest="0x" + "00" * 32))


def test_unknown_builtin_is_a_clear_error():
    with pytest.raises(DatasetMissing, match="unknown builtin dataset 'mnist'.*alice, digits"):
        load_dataset(DatasetRef(format="builtin", builtin="mnist", digest=DIGITS))


CSV = b"a,b,c,label\n0.5,1,2,0\n1,1,1,2\n\n3,2,1,1\n0,0,0,0\n-1,2.25,3,2\n"


def test_uploaded_csv_from_blob_store_and_file(tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    digest = store.put(CSV)
    ref = DatasetRef(format="csv", digest=digest)
    ds = load_dataset(ref, store=store)
    assert ds.x.shape == (5, 3) and ds.y.tolist() == [0, 2, 1, 0, 2]
    assert ds.x[4].tolist() == [-1.0, 2.25, 3.0]
    f = tmp_path / "data.csv"
    f.write_bytes(CSV)
    assert torch.equal(load_dataset(ref, path=f).x, ds.x)


def test_uploaded_file_with_wrong_digest_is_refused(tmp_path):
    f = tmp_path / "data.csv"
    f.write_bytes(CSV + b"1,2,3,0\n")
    with pytest.raises(DatasetDigestMismatch, match="hashes to 0x"):
        load_dataset(DatasetRef(format="csv", digest=sha256_hex(CSV)), path=f)


def test_missing_upload_names_what_to_do(tmp_path):
    ref = DatasetRef(format="npz", digest=sha256_hex(b"nothing"))
    with pytest.raises(DatasetMissing, match="--data"):
        load_dataset(ref)
    with pytest.raises(DatasetMissing, match="not in the blob store"):
        load_dataset(ref, store=LocalBlobStore(tmp_path / "b"))


def test_npz_and_text_uploads_decode(tmp_path):
    buf = io.BytesIO()
    np.savez(buf, x=np.arange(12, dtype=np.float64).reshape(4, 3), y=np.array([0, 1, 2, 1]))
    ds = decode("npz", buf.getvalue())
    assert ds.x.dtype == torch.float32 and ds.x.shape == (4, 3) and ds.y.tolist() == [0, 1, 2, 1]
    t = decode("text", "héllo wörld".encode())
    assert t.vocab == sorted(set("héllo wörld"))
    assert "".join(t.vocab[i] for i in t.tokens.tolist()) == "héllo wörld"
    with pytest.raises(DatasetError, match="'x' and 'y'"):
        b2 = io.BytesIO()
        np.savez(b2, a=np.zeros(3))
        decode("npz", b2.getvalue())
    with pytest.raises(DatasetError, match="not a number"):
        decode("csv", b"1,2,0\n1,x,1\n3,4,1\n")
    with pytest.raises(DatasetError, match="integers"):
        decode("csv", b"1,2,0.5\n")


def test_dataset_must_fit_the_model():
    digits = DatasetRef(format="builtin", builtin="digits", digest=DIGITS)
    ds = load_dataset(digits)
    with pytest.raises(DatasetError, match="64 features per example but the model's model.input_dim is 3"):
        Batches(_spec(digits.model_dump()), ds)
    small = _spec(digits.model_dump(), {"kind": "mlp", "input_dim": 64, "hidden": [], "num_classes": 5})
    with pytest.raises(DatasetError, match="class label 9 but model.num_classes is 5"):
        Batches(small, ds)
    lm = {
        "kind": "transformer_lm",
        "vocab_size": 10,
        "context": 8,
        "d_model": 8,
        "n_heads": 2,
        "n_layers": 1,
        "d_ff": 8,
    }
    alice = DatasetRef(format="builtin", builtin="alice", digest=ALICE)
    with pytest.raises(DatasetError, match="vocab_size is 10 but .* 74 distinct characters"):
        Batches(_spec(alice.model_dump(), lm), load_dataset(alice))


def _digits_batches(**kw) -> Batches:
    ref = {"format": "builtin", "builtin": "digits", "digest": DIGITS, "holdout_fraction": 0.2}
    spec = _spec(ref, {"kind": "mlp", "input_dim": 64, "hidden": [], "num_classes": 10}, **kw)
    return Batches(spec, load_dataset(spec.dataset))


def test_held_out_tail_is_never_trained_on_and_each_epoch_covers_the_training_set_once():
    b = _digits_batches(batch_size=50)
    assert (b.n, b.n_hold, b.n_train) == (1797, 359, 1438)
    seen = np.concatenate([b.indices(s) for s in range(0, 2 * b.n_train // 50 + 2)])
    first_epoch = seen[: b.n_train]
    assert sorted(first_epoch.tolist()) == list(range(b.n_train))
    assert seen.max() < b.n_train
    assert b.heldout_indices().tolist() == list(range(1438, 1797))


def test_any_steps_batch_is_computable_without_the_steps_before():
    a = _digits_batches(batch_size=64)
    b = _digits_batches(batch_size=64)
    late = [b.indices(s) for s in (500, 22, 23, 0)]  # fresh object, random access, crossing epochs
    assert all(np.array_equal(x, a.indices(s)) for x, s in zip(late, (500, 22, 23, 0), strict=True))
    x, y = a.batch(22)
    assert x.shape == (64, 64) and y.shape == (64,)
    assert not np.array_equal(_digits_batches(batch_size=64, seed=4).indices(0), a.indices(0))


def test_text_examples_are_consecutive_windows():
    lm = {
        "kind": "transformer_lm",
        "vocab_size": 74,
        "context": 16,
        "d_model": 8,
        "n_heads": 2,
        "n_layers": 1,
        "d_ff": 8,
    }
    spec = _spec({"format": "builtin", "builtin": "alice", "digest": ALICE, "holdout_fraction": 0.1}, lm)
    ds = load_dataset(spec.dataset)
    b = Batches(spec, ds)
    assert b.n == (152089 - 1) // 16
    x, y = b.examples(np.array([0, 5]))
    assert torch.equal(x[1], ds.tokens[80:96]) and torch.equal(y[1], ds.tokens[81:97])
