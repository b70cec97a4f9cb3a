"""Reading tinygrad Tensors on the calling thread: realised buffers without a kernel, lazy inputs with one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from tg_models import TinyNet, rows
from tinygrad import Tensor
from tinygrad.helpers import GlobalCounters

from aither_tinygrad._sampling import _buffer_prefix, _device, _head, _meta, capture_output, capture_tensor

SHAPES = [(7,), (6, 3), (5, 2, 3, 2), (1, 4), (3, 1)]
DTYPES = [np.float32, np.float16, np.float64, np.int8, np.uint8, np.int32, np.int64, np.uint16, np.bool_]


def _array(shape: tuple[int, ...], dtype: Any) -> np.ndarray[Any, Any]:
    values = np.random.default_rng(len(shape)).random(shape) * 100
    return (values > 50) if dtype is np.bool_ else values.astype(dtype)


def _expected(tensor: Tensor, count: int, columns: int | None) -> np.ndarray[Any, Any]:
    """What the documented way, ``x[:rows].numpy()`` (cut per row to ``columns`` values), reads."""
    head: np.ndarray[Any, Any] = tensor[:count].numpy()
    if columns is not None and head.ndim > 1:
        head = head.reshape(count, -1)[:, :columns]
    return head


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda a: Tensor(a).realize(), id="realised"),
        pytest.param(lambda a: Tensor(a), id="from-numpy"),
        pytest.param(lambda a: Tensor(a).realize().reshape(a.shape[0], -1), id="reshaped"),
    ],
)
def test_a_realised_buffer_gives_exactly_the_first_rows_without_a_kernel(
    make: Callable[[Any], Tensor], shape: tuple[int, ...], dtype: Any
) -> None:
    tensor = make(_array(shape, dtype))
    for count, columns in ((min(shape[0], 2), 4), (shape[0], None), (1, 1), (0, 3)):
        kernels = GlobalCounters.kernel_count
        head = _buffer_prefix(tensor, count, columns)
        assert GlobalCounters.kernel_count == kernels  # read from the buffer: nothing scheduled, nothing run
        assert head is not None
        if count == 0:
            assert head.shape == (0, *tensor.shape[1:])
            continue
        expected = _expected(tensor, count, columns)
        assert head.dtype == expected.dtype
        np.testing.assert_array_equal(head, expected)


def test_the_rows_read_from_a_buffer_are_a_copy() -> None:
    data = rows(4)
    tensor = Tensor(data)  # numpy-backed: tinygrad reads the caller's array in place
    head = _buffer_prefix(tensor, 2, None)
    data[:] = 0
    assert head is not None and head.any()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t: t[1:], id="slice"),
        pytest.param(lambda t: t.permute(1, 0), id="permute"),
        pytest.param(lambda t: t * 2, id="lazy"),
    ],
)
def test_anything_but_a_buffer_seen_through_reshapes_is_not_read_from_memory(make: Callable[[Tensor], Tensor]) -> None:
    assert _buffer_prefix(make(Tensor(rows(4)).realize()), 2, None) is None


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda t: t * 3 + 1, id="elementwise"),
        pytest.param(lambda t: t.permute(1, 0), id="permute"),
        pytest.param(lambda t: t[1:], id="slice"),
        pytest.param(lambda t: (t.cast("int32") * 7).reshape(2, 2, -1), id="int-rank3"),
    ],
)
def test_a_lazy_input_is_sampled_by_one_kernel_for_its_rows_and_stays_lazy(make: Callable[[Tensor], Tensor]) -> None:
    source = Tensor(rows(6)).realize()
    lazy = make(source)
    graph = lazy.uop
    kernels = GlobalCounters.kernel_count
    head = _head(lazy, 2, 3, compute=True)
    assert GlobalCounters.kernel_count - kernels == 1  # one small kernel: the sampled rows only
    assert lazy.uop is graph  # the caller's Tensor was not realised: it still fuses into whatever comes next
    np.testing.assert_array_equal(head, _expected(lazy, 2, 3))


def test_capture_tensor_samples_a_lazy_input_like_a_realised_one() -> None:
    data = rows(6)
    lazy, realised = capture_tensor(Tensor(data) + 0, 2, 5), capture_tensor(Tensor(data).realize(), 2, 5)
    np.testing.assert_array_equal(lazy.data[0], realised.data[0])
    assert lazy.data[1] == realised.data[1] and lazy.rows == realised.rows == 6


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda x: TinyNet(32, 10)(x), id="model-output"),
        pytest.param(lambda x: TinyNet(32, 10)(x + 0).softmax(), id="lazy-chain"),
        pytest.param(lambda x: Tensor.ones(4, 32) + x, id="const-first"),
        pytest.param(lambda x: x.to("PYTHON") * 2, id="copied"),
        pytest.param(lambda x: Tensor.arange(5), id="arange"),
        pytest.param(lambda x: x, id="buffer"),
    ],
)
def test_the_device_is_tinygrads_own_answer(make: Callable[[Tensor], Tensor]) -> None:
    tensor = make(Tensor(rows(4, 32)).realize())
    assert _device(tensor) == str(tensor.device)


def test_meta_names_dtypes_as_numpy_does() -> None:
    tensor = Tensor(np.arange(6, dtype=np.int64).reshape(3, 2))
    assert _meta(tensor, [3, 2])["dtype"] == "int64"


def test_a_realised_output_is_captured_from_its_buffer_without_a_kernel() -> None:
    out = TinyNet()(Tensor(rows(4))).realize()
    kernels = GlobalCounters.kernel_count
    captured = capture_output(out, 1000, False)
    assert GlobalCounters.kernel_count == kernels
    np.testing.assert_array_equal(captured.data[0], out.numpy())


def test_sampling_an_input_with_a_pending_assign_runs_the_assign_once() -> None:
    # An assign has a side effect: its graph must go through Tensor.realize, which tells every live Tensor
    # that the assign ran. Computing it privately would let the caller's own realise run it a second time.
    weights = Tensor(np.zeros((4, 3), dtype=np.float32)).realize()
    weights.assign(weights + 1)
    lazy = weights * 2
    head = _head(lazy, 2, None, compute=True)
    np.testing.assert_array_equal(head, np.full((2, 3), 2, dtype=np.float32))
    np.testing.assert_array_equal(weights.numpy(), np.ones((4, 3), dtype=np.float32))
    np.testing.assert_array_equal(lazy.numpy(), np.full((4, 3), 2, dtype=np.float32))


def test_a_random_input_is_sampled_with_the_values_the_caller_then_gets() -> None:
    Tensor.manual_seed(3)
    lazy = Tensor.rand(6, 4) * 10
    head = _head(lazy, 2, None, compute=True)
    np.testing.assert_array_equal(head, lazy.numpy()[:2])


def test_an_input_with_its_own_contiguous_is_sampled_correctly() -> None:
    source = Tensor(rows(6)).realize()
    lazy = (source * 2).contiguous() + 1
    head = _head(lazy, 3, 4, compute=True)
    np.testing.assert_allclose(head, (rows(6) * 2 + 1)[:3, :4], rtol=1e-6)
    np.testing.assert_allclose(lazy.numpy(), rows(6) * 2 + 1, rtol=1e-6)


@pytest.mark.parametrize("make", [lambda t: t, lambda t: t + 1], ids=["realised", "lazy"])
def test_an_empty_batch_is_sampled_as_no_rows(make: Callable[[Tensor], Tensor]) -> None:
    captured = capture_tensor(make(Tensor(np.zeros((0, 4), dtype=np.float32)).realize()), 5, 10)
    assert captured.rows == 0 and captured.data[0].shape[0] == 0
