"""Export-time attention folding: the folded module computes what the actor computes, for every ACT layout,
and the exported graph no longer carries the query / key projections it does not need."""

import dataclasses

import onnx
import pytest
import torch

from actsac.export.fold import FoldedACT, fold_for_inference
from actsac.policy import build_actor

from .conftest import make_config


def layouts():
    act, history = make_config("act"), make_config("history")
    yield "act", act
    yield "act, 2 encoder + 3 decoder layers", dataclasses.replace(act, n_encoder_layers=2, n_decoder_layers=3)
    yield "act, no encoder", dataclasses.replace(act, n_encoder_layers=0)
    yield "history", history
    yield "history, 2 decoder layers", dataclasses.replace(history, n_decoder_layers=2)


@pytest.mark.parametrize("name, config", list(layouts()), ids=[name for name, _ in layouts()])
def test_folded_actor_computes_the_same(name, config):
    torch.manual_seed(1)
    actor = build_actor(config).eval()
    folded = fold_for_inference(actor)
    assert isinstance(folded, FoldedACT)
    obs = torch.randn(5, *(([config.history] if config.history else []) + [config.state_dim])) * 20
    with torch.no_grad():
        for got, want in zip(folded(obs), actor(obs)):
            torch.testing.assert_close(got, want, rtol=0, atol=2e-6)
        torch.testing.assert_close(folded.to_robot_units(torch.tanh(folded(obs)[0])),
                                   actor.to_robot_units(torch.tanh(actor(obs)[0])), rtol=0, atol=2e-6 * 100)


def test_mlp_and_pre_norm_layers_are_left_as_they_are():
    mlp = build_actor(make_config("mlp")).eval()
    assert fold_for_inference(mlp) is mlp
    act = build_actor(make_config("act")).eval()
    act.decoder.layers[0].norm_first = True  # a layout whose order of operations the folding does not follow
    assert fold_for_inference(act) is act


def test_exported_graph_has_no_query_key_projections(exported):
    checkpoint, result, lines = exported("act")
    model = onnx.load(str(result.path))
    names = {init.name for init in model.graph.initializer}
    assert not any("in_proj" in name for name in names), names
    in_graph = sum(int(torch.tensor(init.dims).prod()) for init in model.graph.initializer)
    assert in_graph < checkpoint.actor.num_parameters()
    assert {node.op_type for node in model.graph.node}.isdisjoint({"Softmax", "Transpose"})
    assert any(line.startswith("graph: attention that cannot vary") for line in lines)
