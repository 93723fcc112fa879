from micrograd_batch import MLP, Value, batch_mean


def test_import_and_one_step():
    model = MLP(2, [3, 1], seed=0)
    loss = batch_mean([(model([1.0, 2.0]) - 1.0) ** 2])
    loss.backward()
    assert any(p.grad != 0.0 for p in model.parameters())
    assert isinstance(Value(1.0) + 1, Value)
