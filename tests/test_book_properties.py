"""Property tests (hypothesis): no crossed book; submitted = filled + resting + cancelled."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from cascadelab.book import Op, OrderBook, Status, op_record

op_rows = st.lists(
    st.tuples(
        st.sampled_from([Op.LIMIT, Op.LIMIT, Op.LIMIT, Op.MARKET, Op.CANCEL, Op.AMEND, Op.CANCEL_ALL, Op.REDUCE]),
        st.integers(0, 40),  # order id
        st.integers(0, 3),  # owner
        st.sampled_from([1, -1]),
        st.integers(95, 105),  # price (protection ticks for markets)
        st.integers(-1, 12),  # qty, sometimes invalid
        st.integers(0, 3),  # tif
        st.integers(0, 3),  # stp
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(op_rows)
def test_quantity_is_conserved_per_order_and_book_never_crosses(rows) -> None:
    book = OrderBook(order_capacity=2, level_capacity=2, out_capacity=2)
    submitted: dict[int, int] = defaultdict(int)
    filled: dict[int, int] = defaultdict(int)
    cancelled: dict[int, int] = defaultdict(int)
    for ts, (kind, oid, owner, side, price, qty, tif, stp) in enumerate(rows):
        if kind == Op.MARKET:
            price -= 95
        before = book.order(oid)
        res = book.submit(op_record(kind, oid, owner, side, price, qty, tif, stp, 0, ts))
        status = res.status
        if kind in (Op.LIMIT, Op.MARKET) and status not in (Status.REJECTED_INVALID, Status.REJECTED_DUPLICATE_ID):
            submitted[oid] += qty
        if kind == Op.AMEND and status == Status.OK:
            submitted[oid] += max(0, qty - before.qty)
        for f in res.fills:
            filled[int(f["maker_id"])] += int(f["qty"])
            filled[int(f["taker_id"])] += int(f["qty"])
            assert f["qty"] > 0
        for x in res.cancels:
            cancelled[int(x["order_id"])] += int(x["qty"])
            assert x["qty"] > 0
        if status not in (Status.OK, Status.REJECTED_POST_ONLY, Status.REJECTED_FOK, Status.REJECTED_NO_LIQUIDITY):
            assert len(res.fills) == 0 and len(res.cancels) == 0  # a rejection leaves no trace
        book.check_invariants()  # uncrossed, sorted, FIFO, sizes > 0
        for order_id in submitted:
            o = book.order(order_id)
            resting = o.qty if o else 0
            assert submitted[order_id] == filled[order_id] + resting + cancelled[order_id], order_id
