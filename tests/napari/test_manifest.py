import npe2

from napari_frugalseg._napari import sample_data


def test_manifest_is_found_and_valid():
    pm = npe2.PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-frugalseg")
    keys = {s.key for s in manifest.contributions.sample_data}
    assert keys == {"blobs", "membranes"}


def test_samples_are_real_images_with_scribbles():
    for fn in (sample_data.blobs, sample_data.membranes):
        (image, _, kind1), (labels, meta, kind2) = fn()
        assert (kind1, kind2) == ("image", "labels")
        assert image.shape == labels.shape and labels.max() >= 2
        assert "scribbles" in meta["name"]
