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


def test_widget_and_settings_are_contributed():
    pm = npe2.PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-frugalseg")
    assert [w.display_name for w in manifest.contributions.widgets] == ["frugalseg"]
    props = manifest.contributions.configurations["frugalseg"].properties
    assert {"device", "refresh_seconds", "patch_size", "autosave"} <= set(props)


def test_settings_come_from_napari_preferences(monkeypatch):
    from napari.settings import get_plugin_settings

    from napari_frugalseg._napari.settings import load_settings

    group = get_plugin_settings("napari-frugalseg").frugalseg
    monkeypatch.setattr(group, "refresh_seconds", 7.0)
    assert load_settings().refresh_seconds == 7.0


def test_manifest_preferences_match_the_settings_defaults():
    """Every preference of napari.yaml is a Settings field with the same default: where napari
    is there its values win, so a drift would change a default unseen. (Some Settings, such as
    ndim and robust_q, are set in the widget only.)"""
    import dataclasses

    from napari_frugalseg._napari.settings import Settings

    pm = npe2.PluginManager.instance()
    pm.discover()
    props = pm.get_manifest("napari-frugalseg").contributions.configurations["frugalseg"].properties
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    assert {name: prop.default for name, prop in props.items()} == {n: defaults[n] for n in props}
