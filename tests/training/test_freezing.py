"""Frozen lower layers: what stays fixed, so a cheaper CPU step never silently trains less or more."""

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from training.config import TrainConfig
from training.trainer import freeze_lower_layers


def small_bert() -> BertForSequenceClassification:
    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32)
    return BertForSequenceClassification(config)


def test_frozen_layers_fix_the_embeddings_and_the_lowest_layers_only():
    model = small_bert()
    freeze_lower_layers(model, 2, embeddings=False)
    assert not any(p.requires_grad for p in model.bert.embeddings.parameters())
    assert not any(p.requires_grad for layer in model.bert.encoder.layer[:2] for p in layer.parameters())
    assert all(p.requires_grad for p in model.bert.encoder.layer[2].parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())


def test_a_training_step_leaves_frozen_weights_unchanged():
    model = small_bert()
    freeze_lower_layers(model, 1, embeddings=False)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    logits = model(input_ids=torch.randint(0, 64, (4, 8))).logits
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 0, 1])).backward()
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert not any(name.startswith(("bert.embeddings", "bert.encoder.layer.0.")) for name in changed)
    assert any(name.startswith("bert.encoder.layer.1.") for name in changed)


def test_only_the_word_embeddings_freeze_without_frozen_layers():
    model = small_bert()
    freeze_lower_layers(model, 0, embeddings=True)
    assert not model.bert.embeddings.word_embeddings.weight.requires_grad
    assert model.bert.embeddings.position_embeddings.weight.requires_grad


def test_more_frozen_layers_than_the_encoder_has_is_refused():
    with pytest.raises(ValueError, match="exceeds"):
        freeze_lower_layers(small_bert(), 4, embeddings=False)
    with pytest.raises(ValueError, match="frozen_layers"):
        TrainConfig(frozen_layers=-1)
