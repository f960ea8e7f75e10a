import keras
import numpy as np
import pytest

import keras_senet
from keras_senet.models.imagenet_utils import decode_predictions, preprocess_input

MEAN = np.array([0.485, 0.456, 0.406], "float32")
STD = np.array([0.229, 0.224, 0.225], "float32")


def test_preprocess_numpy_and_tensor():
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = (x / 255.0 - MEAN) / STD
    np.testing.assert_allclose(preprocess_input(x), expected, rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(preprocess_input(keras.ops.convert_to_tensor(x))), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(preprocess_input(x.astype("uint8")), (x.astype("uint8") / 255.0 - MEAN) / STD, rtol=1e-6)


def test_preprocess_channels_first():
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 4, 4)).astype("float32")
    out = preprocess_input(x, data_format="channels_first")
    np.testing.assert_allclose(out, (x / 255.0 - MEAN[:, None, None]) / STD[:, None, None], rtol=1e-6)


def test_family_module_exports():
    assert keras_senet.se_resnet.preprocess_input is preprocess_input
    assert keras_senet.se_resnet.decode_predictions is decode_predictions


def test_decode_predictions_offline():
    preds = np.zeros((2, 1000), "float32")
    preds[0, 0], preds[0, 1], preds[0, 999] = 0.7, 0.2, 0.1
    preds[1, 134], preds[1, 517] = 0.6, 0.4  # two different synsets both named "crane"
    decoded = decode_predictions(preds, top=3)
    assert decoded[0] == [("n01440764", "tench", pytest.approx(0.7)),
                          ("n01443537", "goldfish", pytest.approx(0.2)),
                          ("n15075141", "toilet_tissue", pytest.approx(0.1))]
    assert [d[:2] for d in decoded[1][:2]] == [("n02012849", "crane"), ("n03126707", "crane")]


def test_decode_predictions_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(samples, 1000\).*\(2, 10\)"):
        decode_predictions(np.zeros((2, 10)))


@pytest.mark.parametrize("subset, classes", [("imagenet-12k", 11821), ("imagenet-21k-miil", 11221)])
def test_decode_predictions_of_larger_heads_matches_timms_lists(subset, classes):
    # timm's own lists (timm/data/_info, read by its ImageNetInfo) are the reference
    from timm.data import ImageNetInfo

    info = ImageNetInfo(subset)
    wnids, lemmas = info.label_names(), info.label_descriptions()
    assert len(wnids) == classes
    chosen = [0, 1, 4321, classes - 1]
    preds = np.zeros((len(chosen), classes), "float32")
    for row, index in enumerate(chosen):
        preds[row, index] = 1.0
    for index, decoded in zip(chosen, decode_predictions(preds, top=1)):
        wnid, name, score = decoded[0]
        assert wnid == wnids[index] and score == 1.0
        assert name == lemmas[index].split(",")[0].replace(" ", "_")
    # and every class, through the same table decode_predictions reads
    labels = keras_senet.inputs.imagenet_labels(classes)
    assert [w for w, _ in labels] == list(wnids)


def test_top_k_without_names_rejects_an_unknown_width():
    with pytest.raises(ValueError, match="500 classes and no class names; ImageNet names exist for 1000, 11821, 11221"):
        keras_senet.inputs.top_k(np.zeros((1, 500)))
