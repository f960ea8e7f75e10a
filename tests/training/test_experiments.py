import json

from keras_senet.training import experiments


def test_compare_se_with_baseline_and_plot(tmp_path):
    se, plain = experiments.compare(depth=8, epochs=1, train_images=256, test_images=128, batch_size=64,
                                    image_size=16, output_dir=str(tmp_path), verbose=0)
    assert (se.name, plain.name) == ("se_resnet8_cifar", "resnet8_cifar")
    # One SE block per residual block (16, 32, 64 channels; C // 16 units):
    # 2 * C * (C // 16) weights + C // 16 + C biases.
    se_params = sum(2 * c * (c // 16) + c // 16 + c for c in (16, 32, 64))
    assert se.params - plain.params == se_params
    assert se.macs > plain.macs
    for run in (se, plain):
        assert len(run.history["loss"]) == 1
        # A share of the 128 test images, and what fit's own validation pass
        # measured on the same images after the last epoch.
        assert run.test_accuracy * 128 == round(run.test_accuracy * 128), run.test_accuracy
        assert run.test_accuracy == run.history["val_sparse_categorical_accuracy"][-1]
        json.dumps(run.row())  # plain data for results files
    assert "| se_resnet8_cifar | 0 |" in experiments.table([se, plain])
    png = experiments.plot([se, plain], tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
