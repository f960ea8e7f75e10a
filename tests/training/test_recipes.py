import keras
import numpy as np
import pytest

from keras_senet.training import recipes
from keras_senet.training.recipes import RECIPES, SparseCategoricalCrossentropy, get_recipe, make_schedule


def test_paper_schedule_scales_and_steps():
    paper = RECIPES["paper"]
    assert recipes.learning_rate(paper, 1024) == pytest.approx(0.6)  # Hu et al.: 0.6 for 1024
    assert recipes.learning_rate(paper, 256) == pytest.approx(0.15)
    schedule = make_schedule(paper, steps_per_epoch=10, global_batch=256)  # 100 epochs, /10 every 30
    lr = lambda epoch: float(schedule(epoch * 10))  # noqa: E731
    assert [lr(0), lr(29.9), lr(30), lr(59.9), lr(60), lr(90)] == pytest.approx(
        [0.15, 0.15, 0.015, 0.015, 0.0015, 0.00015])


def test_cosine_warmup_and_overrides():
    recipe = get_recipe("cosine", epochs=10, warmup_epochs=2)
    schedule = make_schedule(recipe, steps_per_epoch=100, global_batch=512)
    assert float(schedule(0)) == pytest.approx(0.0, abs=1e-6)
    assert float(schedule(200)) == pytest.approx(0.2)  # peak 0.1 per 256 at the end of warm-up
    assert float(schedule(600)) == pytest.approx(0.1, rel=1e-4)  # half-way down the cosine
    assert float(schedule(1000)) == pytest.approx(0.0, abs=1e-6)
    step = make_schedule(get_recipe("cifar", epochs=4, warmup_epochs=1), steps_per_epoch=10, global_batch=128)
    assert [float(step(s)) for s in (0, 9, 19, 20, 30)] == pytest.approx([0.01, 0.1, 0.1, 0.01, 0.001])


def test_label_smoothing_loss_matches_keras_one_hot():
    y = np.array([0, 2, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]], "float32")
    ours = SparseCategoricalCrossentropy(label_smoothing=0.1)(y, p)
    reference = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(3)[y], p)
    assert float(ours) == pytest.approx(float(reference), rel=1e-6)
    plain = keras.losses.SparseCategoricalCrossentropy()(y, p)
    assert float(SparseCategoricalCrossentropy()(y, p)) == pytest.approx(float(plain), rel=1e-6)
    config = SparseCategoricalCrossentropy(0.2, from_logits=True).get_config()
    assert SparseCategoricalCrossentropy.from_config(config).label_smoothing == 0.2


def test_weight_decay_skips_batchnorm_and_biases():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()])
    optimizer = recipes.make_optimizer(RECIPES["paper"], steps_per_epoch=1, global_batch=1024)
    optimizer.build(model.trainable_variables)
    decayed = [v.name for v in model.trainable_variables if optimizer._use_weight_decay(v)]
    assert decayed == ["kernel"]


def test_compiled_model_saves_and_reloads(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    recipes.compile_model(model, get_recipe("cosine", epochs=2), steps_per_epoch=4, global_batch=8)
    model.fit(np.zeros((8, 4)), np.zeros(8), verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert reloaded.loss.label_smoothing == 0.1 and not reloaded.loss.from_logits


def test_recipe_errors():
    with pytest.raises(ValueError, match="recipe"):
        get_recipe("fast")
    with pytest.raises(ValueError, match="schedule"):
        get_recipe("paper", schedule="linear")
